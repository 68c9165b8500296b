// checkout: the caller of the service-invocation tutorial. Dapr on without an app port (it only
// calls out), no ingress, exactly one replica (more would multiply the order loop). APP_PORT
// makes it serve GET /healthz for the probes only.

@description('Location of the app.')
param location string

@description('Tags applied to the app (azd-service-name is added here).')
param tags object

@description('Resource id of the Container Apps environment.')
param environmentId string

@description('Resource id of the app\'s user-assigned identity (AcrPull only).')
param identityId string

@description('Login server of the container registry.')
param registryServer string

@description('Image to run: the deployed one, or a placeholder before the first azd deploy.')
param image string

resource app 'Microsoft.App/containerApps@2025-07-01' = {
  name: 'checkout'
  location: location
  tags: union(tags, { 'azd-service-name': 'checkout' })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
      identitySettings: [
        {
          // Only the platform pulls images with it; the app code can't get a token for it.
          identity: identityId
          lifecycle: 'None'
        }
      ]
      dapr: {
        enabled: true
        appId: 'checkout'
        appProtocol: 'http'
        enableApiLogging: false
        logLevel: 'info'
      }
    }
    template: {
      containers: [
        {
          name: 'checkout'
          image: image
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          env: [
            {
              name: 'APP_PORT'
              value: '5000'
            }
            {
              name: 'LOG_FORMAT'
              value: 'json'
            }
            {
              name: 'RUST_LOG'
              value: 'info'
            }
          ]
          probes: [
            {
              // Up to ~100 s to start: the app may wait for its sidecar, whose components
              // (Cosmos DB: initTimeout 60s) initialise first.
              type: 'Startup'
              httpGet: {
                path: '/healthz'
                port: 5000
                scheme: 'HTTP'
              }
              initialDelaySeconds: 2
              periodSeconds: 10
              timeoutSeconds: 2
              failureThreshold: 10
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/healthz'
                port: 5000
                scheme: 'HTTP'
              }
              periodSeconds: 10
              timeoutSeconds: 2
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/healthz'
                port: 5000
                scheme: 'HTTP'
              }
              periodSeconds: 10
              timeoutSeconds: 2
              failureThreshold: 3
              successThreshold: 1
            }
          ]
        }
      ]
      scale: {
        minReplicas: 1
        maxReplicas: 1
      }
    }
  }
}

output name string = app.name
