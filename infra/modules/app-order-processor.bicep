// order-processor: the callee of the service-invocation tutorial. Dapr delivers the invocations
// to port 5001 (sidecar-to-sidecar, not through ingress). Internal HTTP ingress exists for
// in-environment callers that use the app name or FQDN; nothing is exposed outside the
// environment.

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
              // Start-up fails without the APP_API_TOKEN the platform injects: POST /orders is a
              // sidecar-only route.
              name: 'APP_API_TOKEN_REQUIRED'
              value: 'true'
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
        // Dapr service invocation goes sidecar to sidecar, not through ingress: it neither wakes
        // a scaled-to-zero app nor counts for an HTTP scale rule (which could never fire here).
        // So one replica always runs, and CPU is what adds replicas under load.
        minReplicas: 1
        maxReplicas: 5
        rules: [
          {
            name: 'cpu-utilization'
            custom: {
              type: 'cpu'
              metadata: {
                type: 'Utilization'
                value: '70'
              }
            }
          }
        ]
      }
    }
  }
}

// Applies to requests that reach order-processor through the environment's service discovery
// (app name or FQDN, i.e. its internal ingress). It does NOT apply to the tutorial's own path:
// "Currently, resiliency policies can't be applied to requests made using the Dapr Service
// Invocation API" (learn.microsoft.com/azure/container-apps/service-discovery-resiliency).
// checkout -> order-processor via Dapr is covered by Dapr's built-in invocation retries only.
// Values mirror the local components/resiliency.yaml target `apps.order-processor`: 1 s timeout,
// 2 retries on 502-504 and connection errors, circuit opens after 5 consecutive errors.
resource resiliency 'Microsoft.App/containerApps/resiliencyPolicies@2025-10-02-preview' = {
  parent: app
  name: 'order-processor-resiliency'
  properties: {
    timeoutPolicy: {
      responseTimeoutInSeconds: 1
      connectionTimeoutInSeconds: 1
    }
    httpRetryPolicy: {
      maxRetries: 2
      retryBackOff: {
        initialDelayInMilliseconds: 250
        maxIntervalInMilliseconds: 250
      }
      matches: {
        httpStatusCodes: [
          502
          503
          504
        ]
        errors: [
          'connect-failure'
          'reset'
        ]
      }
    }
    circuitBreakerPolicy: {
      consecutiveErrors: 5
      intervalInSeconds: 10
      maxEjectionPercent: 100
    }
  }
}

output name string = app.name
output fqdn string = app.properties.configuration.ingress.fqdn
