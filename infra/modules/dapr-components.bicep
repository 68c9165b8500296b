// The Dapr components of the environment. A component authenticates with ONE identity
// (`azureClientId`) and its name is unique in the environment, so each consumer gets its own
// component, scoped to its app id and bound to its own user-assigned identity:
//   pubsub            -> order-service     (Service Bus Data Sender on the main topic)
//   pubsub-inventory  -> inventory-service (Receiver on its subscriptions, Sender on the DLQ topic)
//   statestore        -> inventory-service (Cosmos DB Data Contributor on one container)

@description('Name of the existing Container Apps environment.')
param environmentName string

@description('Fully qualified Service Bus namespace, e.g. sb-x.servicebus.windows.net.')
param serviceBusFqdn string

@description('Cosmos DB account endpoint, e.g. https://cosmos-x.documents.azure.com:443/.')
param cosmosEndpoint string

@description('Cosmos DB database of the state store.')
param cosmosDatabaseName string

@description('Cosmos DB container of the state store (partition key path /partitionKey).')
param cosmosContainerName string

@description('Dapr app id (and Service Bus subscription name) of the subscriber.')
param subscriberAppId string

@description('Dapr app id of the publisher.')
param publisherAppId string

@description('Client id of the publisher identity (order-service).')
param publisherClientId string

@description('Client id of the subscriber identity (inventory-service).')
param subscriberClientId string

resource managedEnvironment 'Microsoft.App/managedEnvironments@2025-07-01' existing = {
  name: environmentName
}

resource pubsub 'Microsoft.App/managedEnvironments/daprComponents@2025-07-01' = {
  parent: managedEnvironment
  name: 'pubsub'
  properties: {
    componentType: 'pubsub.azure.servicebus.topics'
    version: 'v1'
    ignoreErrors: false
    initTimeout: '30s'
    metadata: [
      {
        name: 'namespaceName'
        value: serviceBusFqdn
      }
      {
        name: 'azureClientId'
        value: publisherClientId
      }
      {
        // The topics exist already (servicebus.bicep): no admin client, no Manage right needed.
        name: 'disableEntityManagement'
        value: 'true'
      }
    ]
    scopes: [
      publisherAppId
    ]
  }
}

resource pubsubInventory 'Microsoft.App/managedEnvironments/daprComponents@2025-07-01' = {
  parent: managedEnvironment
  name: 'pubsub-inventory'
  properties: {
    componentType: 'pubsub.azure.servicebus.topics'
    version: 'v1'
    ignoreErrors: false
    initTimeout: '30s'
    metadata: [
      {
        name: 'namespaceName'
        value: serviceBusFqdn
      }
      {
        name: 'azureClientId'
        value: subscriberClientId
      }
      {
        name: 'disableEntityManagement'
        value: 'true'
      }
      {
        // = the Service Bus subscription created in servicebus.bicep (also Dapr's default).
        name: 'consumerID'
        value: subscriberAppId
      }
    ]
    scopes: [
      subscriberAppId
    ]
  }
}

resource statestore 'Microsoft.App/managedEnvironments/daprComponents@2025-07-01' = {
  parent: managedEnvironment
  name: 'statestore'
  properties: {
    componentType: 'state.azure.cosmosdb'
    version: 'v1'
    ignoreErrors: false
    // Cosmos DB connection set-up is slow and metadata-rate-limited; the default is 5s.
    initTimeout: '60s'
    metadata: [
      {
        name: 'url'
        value: cosmosEndpoint
      }
      {
        name: 'database'
        value: cosmosDatabaseName
      }
      {
        name: 'collection'
        value: cosmosContainerName
      }
      {
        // No masterKey: the component authenticates with this identity (Entra ID).
        name: 'azureClientId'
        value: subscriberClientId
      }
    ]
    scopes: [
      subscriberAppId
    ]
  }
}

output pubsubName string = pubsub.name
output subscriberPubsubName string = pubsubInventory.name
output stateStoreName string = statestore.name
