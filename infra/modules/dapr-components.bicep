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
      {
        // At most 10 deliveries (batches, with bulk subscribe) run at once per replica: each is
        // Cosmos DB read-modify-writes, which a 0.25-vCPU replica and a serverless account take
        // without throttling itself. KEDA adds replicas for more.
        name: 'maxConcurrentHandlers'
        value: '10'
      }
      {
        // Messages held (locked, renewed) per replica, and the largest batch inventory-service's
        // bulk subscription gets: components-contrib caps maxBulkSubCount at this, and runs
        // maxActiveMessages / batch size batches at once (common/component/azure/servicebus/
        // subscription.go). 100 = one batch of BULK_MAX_MESSAGES (100) at a time. The default
        // (1000) would lock a whole backlog on one replica, away from new replicas.
        name: 'maxActiveMessages'
        value: '100'
      }
      {
        // Renew held locks every 20 s (the default, stated): well inside lockDuration PT1M, so a
        // delivery that retries for minutes keeps its lock and is not redelivered meanwhile.
        name: 'lockRenewalInSec'
        value: '20'
      }
      {
        // Must exceed the worst-case inbound retry time of one delivery (resiliency below: up
        // to ~24 min), or the dead-letter publish after the last retry runs on an expired
        // context, fails, and the message is abandoned instead of dead-lettered.
        name: 'handlerTimeoutInSec'
        value: '1800'
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

// Resiliency (Container Apps applies these inside each scoped app's sidecar, as Dapr Resiliency
// targets `components.<name>.inbound|outbound`; learn.microsoft.com/azure/container-apps/
// dapr-component-resiliency). Mirrors components/resiliency.yaml. Without an inbound retry
// policy and with a dead-letter topic set, Dapr dead-letters a failed delivery after ONE
// attempt, so a `503 RETRY` (Cosmos DB 429, write conflict) would lose a valid order.

// Publishing from order-service: a broker hiccup is retried briefly (3 x ~500 ms, as locally),
// then reported to the caller as a 5xx. 5 s per attempt matches the app's sidecar-call timeout.
// The component's own publishMaxRetries (default 5) still runs inside each attempt.
resource pubsubResiliency 'Microsoft.App/managedEnvironments/daprComponents/resiliencyPolicies@2025-10-02-preview' = {
  parent: pubsub
  name: 'pubsub-resiliency'
  properties: {
    outboundPolicy: {
      httpRetryPolicy: {
        maxRetries: 3
        retryBackOff: {
          initialDelayInMilliseconds: 500
          maxIntervalInMilliseconds: 500
        }
      }
      timeoutPolicy: {
        responseTimeoutInSeconds: 5
      }
    }
  }
}

// Deliveries to inventory-service: exponential backoff from 0.5 s growing to 10 s, 60 retries
// (~10 min of retrying; locally "forever", which ACA's policy cannot express), 10 s per
// attempt. All of it happens in the sidecar within ONE Service Bus delivery (the lock is
// renewed meanwhile); once exhausted, Dapr publishes the event to OrderPlaced-deadletter and
// completes the message. Worst case: 61 attempts x 10 s + ~9 min of backoff (up to x1.5 with
// Dapr's jitter) = ~24 min, below handlerTimeoutInSec (1800 s) above.
resource pubsubInventoryResiliency 'Microsoft.App/managedEnvironments/daprComponents/resiliencyPolicies@2025-10-02-preview' = {
  parent: pubsubInventory
  name: 'pubsub-inventory-resiliency'
  properties: {
    inboundPolicy: {
      httpRetryPolicy: {
        maxRetries: 60
        retryBackOff: {
          initialDelayInMilliseconds: 500
          maxIntervalInMilliseconds: 10000
        }
      }
      timeoutPolicy: {
        responseTimeoutInSeconds: 10
      }
    }
  }
}

// State store calls from inventory-service: short. The app runs its own read-modify-write
// loop with ETags and answers `503 RETRY` when it gives up, which the inbound policy above
// retries; long retries here would only stack under it (a retried ETag conflict fails again).
resource statestoreResiliency 'Microsoft.App/managedEnvironments/daprComponents/resiliencyPolicies@2025-10-02-preview' = {
  parent: statestore
  name: 'statestore-resiliency'
  properties: {
    outboundPolicy: {
      httpRetryPolicy: {
        maxRetries: 2
        retryBackOff: {
          initialDelayInMilliseconds: 200
          maxIntervalInMilliseconds: 1000
        }
      }
      timeoutPolicy: {
        responseTimeoutInSeconds: 5
      }
    }
  }
}

output pubsubName string = pubsub.name
output subscriberPubsubName string = pubsubInventory.name
output stateStoreName string = statestore.name
