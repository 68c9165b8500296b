// Container Apps environment (workload-profiles type, Consumption profile only), its logs routed
// to Log Analytics through a diagnostic setting (no workspace shared key anywhere), and the Dapr
// sidecars' telemetry exported to Application Insights.

@description('Location of the environment.')
param location string

@description('Tags applied to the environment.')
param tags object

@description('Name of the environment.')
param name string

@description('Resource id of the Log Analytics workspace that receives the logs.')
param logAnalyticsWorkspaceId string

@description('Name of the Application Insights component (same resource group) Dapr exports to.')
param applicationInsightsName string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource managedEnvironment 'Microsoft.App/managedEnvironments@2025-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      // Console and system logs go through the diagnostic setting below (resource-specific
      // tables ContainerAppConsoleLogs / ContainerAppSystemLogs).
      destination: 'azure-monitor'
    }
    // Dapr service-invocation and pub/sub traces. Read here, never passed around as an output.
    daprAIConnectionString: applicationInsights.properties.ConnectionString
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    // Zone redundancy needs a VNet-integrated environment; this template has no VNet.
    zoneRedundant: false
    publicNetworkAccess: 'Enabled'
  }
}

resource environmentLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: managedEnvironment
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output id string = managedEnvironment.id
output name string = managedEnvironment.name
output defaultDomain string = managedEnvironment.properties.defaultDomain
