// Entry point for `azd provision` / `azd up`: creates the resource group and deploys every
// resource of the four Dapr services into it. Names that the Rust code also uses (app ids,
// component names, topics, ports) are literals here and in modules/, and
// infra/tests/test_consistency.py fails when they drift apart.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment (AZURE_ENV_NAME): names the resource group and tags everything.')
param environmentName string

// Regions where every service of this template is offered: Container Apps with workload
// profiles (Consumption), Cosmos DB for NoSQL in serverless mode, Service Bus Standard,
// Container Registry, Log Analytics and Application Insights. A conservative list of large
// public regions, not an exhaustive one: serverless Cosmos DB and Container Apps are the two
// that are missing in some regions. azd offers only these in its region prompt.
@minLength(1)
@description('Azure region for every resource (AZURE_LOCATION).')
@metadata({
  azd: {
    type: 'location'
  }
})
@allowed([
  'australiaeast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southcentralus'
  'southeastasia'
  'swedencentral'
  'switzerlandnorth'
  'uksouth'
  'westeurope'
  'westus2'
  'westus3'
])
param location string

@description('Object id of the developer running azd (AZURE_PRINCIPAL_ID); empty = no developer access.')
param principalId string = ''

@description('Kind of principalId (AZURE_PRINCIPAL_TYPE): User, Group or ServicePrincipal.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string = 'User'

@description('Set by azd from SERVICE_CHECKOUT_RESOURCE_EXISTS: the app exists, keep its image.')
param checkoutExists bool = false

@description('Set by azd from SERVICE_ORDER_PROCESSOR_RESOURCE_EXISTS.')
param orderProcessorExists bool = false

@description('Set by azd from SERVICE_ORDER_SERVICE_RESOURCE_EXISTS.')
param orderServiceExists bool = false

@description('Set by azd from SERVICE_INVENTORY_SERVICE_RESOURCE_EXISTS.')
param inventoryServiceExists bool = false

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
// Runs until the first `azd deploy` replaces it (it listens on port 80, so the first revision
// reports failing probes until then).
var placeholderImage = 'mcr.microsoft.com/azuredocs/containerapps-helloworld:latest'

// Pub/sub and state names shared with the Rust code.
var topicName = 'OrderPlaced'
var deadLetterTopicName = 'OrderPlaced-deadletter'
var stateDatabaseName = 'inventory'
var stateContainerName = 'state'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.containerRegistryRegistries}${resourceToken}'
  }
}

// One identity per service (each with AcrPull on the registry).
module checkoutIdentity 'modules/identity.bicep' = {
  name: 'identity-checkout'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.managedIdentityUserAssignedIdentities}checkout-${resourceToken}'
    registryName: registry.outputs.name
  }
}

module orderProcessorIdentity 'modules/identity.bicep' = {
  name: 'identity-order-processor'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.managedIdentityUserAssignedIdentities}order-processor-${resourceToken}'
    registryName: registry.outputs.name
  }
}

module orderServiceIdentity 'modules/identity.bicep' = {
  name: 'identity-order-service'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.managedIdentityUserAssignedIdentities}order-service-${resourceToken}'
    registryName: registry.outputs.name
  }
}

module inventoryServiceIdentity 'modules/identity.bicep' = {
  name: 'identity-inventory-service'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.managedIdentityUserAssignedIdentities}inventory-service-${resourceToken}'
    registryName: registry.outputs.name
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.serviceBusNamespaces}${resourceToken}'
    topicName: topicName
    deadLetterTopicName: deadLetterTopicName
    subscriptionName: 'inventory-service'
    publisherPrincipalId: orderServiceIdentity.outputs.principalId
    subscriberPrincipalId: inventoryServiceIdentity.outputs.principalId
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.documentDBDatabaseAccounts}${resourceToken}'
    databaseName: stateDatabaseName
    containerName: stateContainerName
    dataContributorPrincipalId: inventoryServiceIdentity.outputs.principalId
  }
}

// Read-only data-plane access for the developer (skipped when azd knows no principal, e.g. in a
// pipeline without AZURE_PRINCIPAL_ID).
module developerAccess 'modules/developer-access.bicep' = if (!empty(principalId)) {
  name: 'developer-access'
  scope: rg
  params: {
    principalId: principalId
    principalType: principalType
    serviceBusNamespaceName: serviceBus.outputs.name
    cosmosAccountName: cosmos.outputs.name
  }
}

module containerAppsEnv 'modules/container-apps-env.bicep' = {
  name: 'container-apps-env'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.appManagedEnvironments}${resourceToken}'
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module daprComponents 'modules/dapr-components.bicep' = {
  name: 'dapr-components'
  scope: rg
  params: {
    environmentName: containerAppsEnv.outputs.name
    serviceBusFqdn: serviceBus.outputs.fqdn
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: stateDatabaseName
    cosmosContainerName: stateContainerName
    publisherAppId: 'order-service'
    subscriberAppId: 'inventory-service'
    publisherClientId: orderServiceIdentity.outputs.clientId
    subscriberClientId: inventoryServiceIdentity.outputs.clientId
  }
}

// Current images of apps that exist already (see modules/fetch-container-image.bicep).
module checkoutImage 'modules/fetch-container-image.bicep' = if (checkoutExists) {
  name: 'image-checkout'
  scope: rg
  params: {
    name: 'checkout'
  }
}

module orderProcessorImage 'modules/fetch-container-image.bicep' = if (orderProcessorExists) {
  name: 'image-order-processor'
  scope: rg
  params: {
    name: 'order-processor'
  }
}

module orderServiceImage 'modules/fetch-container-image.bicep' = if (orderServiceExists) {
  name: 'image-order-service'
  scope: rg
  params: {
    name: 'order-service'
  }
}

module inventoryServiceImage 'modules/fetch-container-image.bicep' = if (inventoryServiceExists) {
  name: 'image-inventory-service'
  scope: rg
  params: {
    name: 'inventory-service'
  }
}

// Each app takes its identity module's output, so it waits for that whole module, AcrPull role
// assignment included: an app created before its identity can pull fails to provision.
module checkout 'modules/app-checkout.bicep' = {
  name: 'app-checkout'
  scope: rg
  params: {
    location: location
    tags: tags
    environmentId: containerAppsEnv.outputs.id
    identityId: checkoutIdentity.outputs.id
    registryServer: registry.outputs.loginServer
    image: checkoutExists ? checkoutImage!.outputs.image : placeholderImage
  }
}

module orderProcessor 'modules/app-order-processor.bicep' = {
  name: 'app-order-processor'
  scope: rg
  params: {
    location: location
    tags: tags
    environmentId: containerAppsEnv.outputs.id
    identityId: orderProcessorIdentity.outputs.id
    registryServer: registry.outputs.loginServer
    image: orderProcessorExists ? orderProcessorImage!.outputs.image : placeholderImage
  }
}

module orderService 'modules/app-order-service.bicep' = {
  name: 'app-order-service'
  scope: rg
  params: {
    location: location
    tags: tags
    environmentId: containerAppsEnv.outputs.id
    identityId: orderServiceIdentity.outputs.id
    registryServer: registry.outputs.loginServer
    image: orderServiceExists ? orderServiceImage!.outputs.image : placeholderImage
  }
  // The sidecar starts with its components and Service Bus role assignments in place.
  dependsOn: [
    daprComponents
    serviceBus
  ]
}

module inventoryService 'modules/app-inventory-service.bicep' = {
  name: 'app-inventory-service'
  scope: rg
  params: {
    location: location
    tags: tags
    environmentId: containerAppsEnv.outputs.id
    identityId: inventoryServiceIdentity.outputs.id
    registryServer: registry.outputs.loginServer
    image: inventoryServiceExists ? inventoryServiceImage!.outputs.image : placeholderImage
    serviceBusNamespaceName: serviceBus.outputs.name
  }
  // serviceBus is implicit (serviceBusNamespaceName); Cosmos DB role assignment and components
  // must exist before the sidecar starts.
  dependsOn: [
    daprComponents
    cosmos
  ]
}

// Read by azd (written to .azure/<env>/.env). Names, ids and endpoints only: no key, no
// connection string (infra/tests/test_consistency.py enforces it).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = registry.outputs.loginServer
output AZURE_CONTAINER_REGISTRY_NAME string = registry.outputs.name
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = containerAppsEnv.outputs.name
output AZURE_CONTAINER_APPS_ENVIRONMENT_ID string = containerAppsEnv.outputs.id
output AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN string = containerAppsEnv.outputs.defaultDomain
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsWorkspaceName
output AZURE_LOG_ANALYTICS_WORKSPACE_CUSTOMER_ID string = monitoring.outputs.logAnalyticsCustomerId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_SERVICE_BUS_NAMESPACE string = serviceBus.outputs.name
output AZURE_COSMOS_ACCOUNT_NAME string = cosmos.outputs.name
output SERVICE_CHECKOUT_NAME string = checkout.outputs.name
output SERVICE_ORDER_PROCESSOR_NAME string = orderProcessor.outputs.name
output SERVICE_ORDER_SERVICE_NAME string = orderService.outputs.name
output SERVICE_INVENTORY_SERVICE_NAME string = inventoryService.outputs.name
output SERVICE_ORDER_SERVICE_URI string = 'https://${orderService.outputs.fqdn}'
output SERVICE_INVENTORY_SERVICE_URI string = 'https://${inventoryService.outputs.fqdn}'
