// order-service: the public HTTP API (POST /order) of the pub/sub tutorial. External ingress,
// HTTPS only; publishes OrderPlaced through the Dapr component `pubsub` with its own identity
// (Service Bus Data Sender on that topic only).

@description('Location of the app.')
param location string

@description('Tags applied to the app (azd-service-name is added here).')
param tags object

@description('Resource id of the Container Apps environment.')
param environmentId string

@description('Resource id of the app\'s user-assigned identity (AcrPull; Service Bus sender through the Dapr component pubsub).')
param identityId string

@description('Login server of the container registry.')
param registryServer string

@description('Image to run: the deployed one, or a placeholder before the first azd deploy.')
param image string

resource app 'Microsoft.App/containerApps@2025-07-01' = {
  name: 'order-service'
  location: location
  tags: union(tags, { 'azd-service-name': 'order-service' })
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
        external: true
        targetPort: 5002
        transport: 'http'
        // Plain HTTP requests are redirected to HTTPS.
        allowInsecure: false
      }
      // No identitySettings entry: the identity keeps the default lifecycle (All) because the
      // Dapr sidecar authenticates to Service Bus with it.
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
      dapr: {
        enabled: true
        appId: 'order-service'
        appPort: 5002
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
          name: 'order-service'
          image: image
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          env: [
            {
              name: 'APP_PORT'
              value: '5002'
            }
            {
              name: 'PUBSUB_NAME'
              value: 'pubsub'
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
                port: 5002
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
                port: 5002
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
                port: 5002
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
        // Scales to zero when idle: the ingress holds the first request while a replica starts.
        minReplicas: 0
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
