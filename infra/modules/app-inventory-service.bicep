// inventory-service: the subscriber of the pub/sub tutorial. Dapr delivers the OrderPlaced events
// (and the dead-letter topic) to port 5003 over localhost. External HTTPS ingress exposes the same
// port for the read-only routes (GET /inventory/{itemId}, GET /inventory/{itemId}/orders/{orderId},
// GET /deadletters); every write route (POST /inventory/{itemId}, the deliveries) needs the
// dapr-api-token only the sidecar has (APP_API_TOKEN_REQUIRED), so ingress opens no
// unauthenticated write. Uses the components `pubsub-inventory` and `statestore`, both bound to
// this app's own identity.

@description('Location of the app.')
param location string

@description('Tags applied to the app (azd-service-name is added here).')
param tags object

@description('Resource id of the Container Apps environment.')
param environmentId string

@description('Resource id of the app\'s user-assigned identity (AcrPull; Service Bus and Cosmos DB through Dapr; KEDA).')
param identityId string

@description('Login server of the container registry.')
param registryServer string

@description('Image to run: the deployed one, or a placeholder before the first azd deploy.')
param image string

@description('Service Bus namespace name (not the FQDN) for the KEDA scale rules.')
param serviceBusNamespaceName string

resource app 'Microsoft.App/containerApps@2025-07-01' = {
  name: 'inventory-service'
  location: location
  tags: union(tags, { 'azd-service-name': 'inventory-service' })
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
        targetPort: 5003
        transport: 'http'
        allowInsecure: false
      }
      // No identitySettings entry: the identity keeps the default lifecycle (All) because the
      // Dapr sidecar authenticates to Service Bus and Cosmos DB with it.
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
      dapr: {
        enabled: true
        appId: 'inventory-service'
        appPort: 5003
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
          name: 'inventory-service'
          image: image
          resources: {
            cpu: json('0.25')
            memory: '0.5Gi'
          }
          env: [
            {
              name: 'APP_PORT'
              value: '5003'
            }
            {
              name: 'PUBSUB_NAME'
              value: 'pubsub-inventory'
            }
            {
              name: 'STATE_STORE_NAME'
              value: 'statestore'
            }
            {
              // Start-up fails without the APP_API_TOKEN the platform injects: the write routes
              // must never run unauthenticated behind the external ingress.
              name: 'APP_API_TOKEN_REQUIRED'
              value: 'true'
            }
            {
              // Seeded at start-up, create-only: an existing stock record is never overwritten.
              name: 'INITIAL_STOCK'
              value: 'item1=100'
            }
            {
              // 30 days. Must exceed the Service Bus message TTL (P14D, servicebus.bicep): a
              // redelivered event must still find its recorded outcome (test_consistency.py).
              name: 'OUTCOME_TTL_SECONDS'
              value: '2592000'
            }
            {
              // OrderPlaced in batches of up to 100 (Dapr bulk subscribe, alpha in 1.16), not
              // the service's default 300 (docs/deploy-azure.md says why). Service Bus receives a
              // batch itself, capped at the component's maxActiveMessages
              // (dapr-components.bicep, 100); maxAwaitDurationMs does not apply to it.
              name: 'BULK_MAX_MESSAGES'
              value: '100'
            }
            {
              // Keeps serving 10 s after SIGTERM: Container Apps stops the Dapr sidecar about 5 s
              // after the app, and the sidecar delivers events until then and drains the ones in
              // flight after. A delivery refused meanwhile can be acknowledged by the sidecar's
              // shutdown and lost (docs/deploy-azure.md). Within the 30 s termination grace period.
              name: 'SHUTDOWN_DELAY_SECONDS'
              value: '10'
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
                port: 5003
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
                port: 5003
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
                port: 5003
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
        // One replica always runs: the Dapr subscription lives in the sidecar, and a cold start
        // from zero (KEDA poll + sidecar start + Cosmos DB component init) would delay every
        // first event by up to a minute. KEDA adds replicas when the backlog grows.
        minReplicas: 1
        maxReplicas: 5
        rules: [
          {
            name: 'orderplaced-backlog'
            custom: {
              type: 'azure-servicebus'
              // Managed identity, no connection string: Data Receiver on the subscription
              // includes the subscriptions/read action the scaler needs for the message count.
              identity: identityId
              metadata: {
                namespace: serviceBusNamespaceName
                topicName: 'OrderPlaced'
                subscriptionName: 'inventory-service'
                messageCount: '20'
              }
            }
          }
          {
            name: 'deadletter-backlog'
            custom: {
              type: 'azure-servicebus'
              identity: identityId
              metadata: {
                namespace: serviceBusNamespaceName
                topicName: 'OrderPlaced-deadletter'
                subscriptionName: 'inventory-service'
                messageCount: '20'
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
