// order-processor: the callee of the service-invocation tutorial. Dapr delivers the invocations
// to port 5001 (sidecar-to-sidecar, not through ingress). Internal HTTP ingress exists for the
// HTTP scale rule and in-environment callers; nothing is exposed outside the environment.

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
  name: 'order-processor'
  location: location
  tags: union(tags, { 'azd-service-name': 'order-processor' })
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
      ingress: {
        external: false
        targetPort: 5001
        transport: 'http'
        allowInsecure: false
      }
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
        appId: 'order-processor'
        appPort: 5001
        appProtocol: 'http'
        enableApiLogging: false
        logLevel: 'info'
        appHealth: {
          enabled: true
          path: '/healthz'
          probeIntervalSeconds: 5
          probeTimeoutMilliseconds: 1000
          threshold: 3
        }
      }
    }
    template: {
      containers: [
        {
          name: 'order-processor'
          image: image
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          env: [
            {
              name: 'APP_PORT'
              value: '5001'
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
                port: 5001
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
                port: 5001
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
                port: 5001
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
        // At least one replica: Dapr service invocation goes sidecar to sidecar, not through
        // ingress, so it neither wakes a scaled-to-zero app nor counts for the HTTP rule.
        minReplicas: 1
        maxReplicas: 5
        rules: [
          {
            name: 'http-concurrency'
            http: {
              metadata: {
                concurrentRequests: '50'
              }
            }
          }
        ]
      }
    }
  }
}

output name string = app.name
output fqdn string = app.properties.configuration.ingress.fqdn
