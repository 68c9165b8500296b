// Container Apps environment (workload-profiles type, Consumption profile only), its logs routed
// to Log Analytics through a diagnostic setting (no workspace shared key anywhere), and the traces
// of the apps and of their Dapr sidecars sent to Application Insights by the environment's
// managed OpenTelemetry agent, so one order is one end-to-end transaction there.

@description('Location of the environment.')
param location string

@description('Tags applied to the environment.')
param tags object

@description('Name of the environment.')
param name string

@description('Resource id of the Log Analytics workspace that receives the logs.')
param logAnalyticsWorkspaceId string

@description('Name of the Application Insights component (same resource group) the traces go to.')
param applicationInsightsName string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// The managed OpenTelemetry agent (openTelemetryConfiguration, with includeDapr for the sidecars'
// spans) exists only in preview API versions; 2025-10-02-preview is the one with offline type data.
// With it, Container Apps injects OTEL_EXPORTER_OTLP_ENDPOINT (the agent, port 4317) and
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc into every app, which service-kit's exporter reads
// (learn.microsoft.com/azure/container-apps/opentelemetry-agents, "Environment variables").
// No daprAIConnectionString (the older Dapr-only export): while a daprAI* value is set, Dapr's
// traces take that path and includeDapr is bypassed (learn.microsoft.com/answers/questions/5826605).
resource managedEnvironment 'Microsoft.App/managedEnvironments@2025-10-02-preview' = {
  name: name
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      // Console and system logs go through the diagnostic setting below (resource-specific
      // tables ContainerAppConsoleLogs / ContainerAppSystemLogs).
      destination: 'azure-monitor'
    }
    // The agent's appInsights destination. Read here, never passed around as an output.
    appInsightsConfiguration: {
      connectionString: applicationInsights.properties.ConnectionString
    }
    openTelemetryConfiguration: {
      tracesConfiguration: {
        // The apps' spans and, with includeDapr, the sidecars' (invocation, pub/sub).
        includeDapr: true
        destinations: [
          'appInsights'
        ]
      }
    }
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
