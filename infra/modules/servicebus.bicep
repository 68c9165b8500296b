// Service Bus namespace (Standard: topics need Standard or Premium), the two topics and the
// inventory-service subscriptions, and every data-plane role assignment, each at the narrowest
// entity scope. Entities are created here because the Dapr components set
// `disableEntityManagement: "true"` (so their identities need no Manage right).

@description('Location of the namespace.')
param location string

@description('Tags applied to the namespace.')
param tags object

@description('Namespace name: 6-50 characters, letters, digits and hyphens, starts with a letter.')
@minLength(6)
@maxLength(50)
param name string

@description('Topic order-service publishes to.')
param topicName string

@description('Dead-letter topic: Dapr re-publishes dropped deliveries here from the subscriber sidecar.')
param deadLetterTopicName string

@description('Subscription name = Dapr consumerID of the subscriber = its app id.')
param subscriptionName string

@description('Principal id of the publisher identity (order-service).')
param publisherPrincipalId string

@description('Principal id of the subscriber identity (inventory-service).')
param subscriberPrincipalId string

// Built-in roles.
var dataSenderRoleId = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var dataReceiverRoleId = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    // Entra ID only: no SAS keys, no connection strings anywhere.
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    zoneRedundant: false
  }
}

resource topic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: topicName
  properties: {
    defaultMessageTimeToLive: 'P14D'
    maxSizeInMegabytes: 1024
    enableBatchedOperations: true
    enablePartitioning: false
    requiresDuplicateDetection: false
    supportOrdering: false
  }
}

resource deadLetterTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: deadLetterTopicName
  properties: {
    defaultMessageTimeToLive: 'P14D'
    maxSizeInMegabytes: 1024
    enableBatchedOperations: true
    enablePartitioning: false
    requiresDuplicateDetection: false
    supportOrdering: false
  }
}

// Native dead-lettering is on as well: a message the subscriber keeps abandoning (Dapr gives the
// message back when the app answers RETRY or fails) moves to the subscription's $DeadLetterQueue
// after maxDeliveryCount attempts, and expired messages are dead-lettered instead of dropped.
resource orderSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: topic
  name: subscriptionName
  properties: {
    maxDeliveryCount: 10
    lockDuration: 'PT1M'
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    enableBatchedOperations: true
    requiresSession: false
  }
}

resource deadLetterTopicSubscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = {
  parent: deadLetterTopic
  name: subscriptionName
  properties: {
    maxDeliveryCount: 10
    lockDuration: 'PT1M'
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: true
    deadLetteringOnFilterEvaluationExceptions: true
    enableBatchedOperations: true
    requiresSession: false
  }
}

// order-service: send to the main topic only.
resource publisherSendsToTopic 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, publisherPrincipalId, dataSenderRoleId)
  scope: topic
  properties: {
    principalId: publisherPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSenderRoleId)
    description: 'order-service publishes ${topicName}.'
  }
}

// inventory-service: receive from its own subscriptions only. The role's
// topics/subscriptions/read action also lets the KEDA scale rule read the message count.
resource subscriberReceivesFromSubscription 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(orderSubscription.id, subscriberPrincipalId, dataReceiverRoleId)
  scope: orderSubscription
  properties: {
    principalId: subscriberPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiverRoleId)
    description: 'inventory-service receives ${topicName}/${subscriptionName}.'
  }
}

resource subscriberReceivesFromDeadLetterSubscription 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterTopicSubscription.id, subscriberPrincipalId, dataReceiverRoleId)
  scope: deadLetterTopicSubscription
  properties: {
    principalId: subscriberPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiverRoleId)
    description: 'inventory-service receives ${deadLetterTopicName}/${subscriptionName}.'
  }
}

// inventory-service: send to the dead-letter topic only (the subscriber's sidecar publishes
// dropped deliveries there).
resource subscriberSendsToDeadLetterTopic 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterTopic.id, subscriberPrincipalId, dataSenderRoleId)
  scope: deadLetterTopic
  properties: {
    principalId: subscriberPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSenderRoleId)
    description: 'inventory-service dead-letters to ${deadLetterTopicName}.'
  }
}

output name string = namespace.name
// Host name only (serviceBusEndpoint is https://<name>.servicebus.windows.net:443/): the
// fully qualified namespace that Dapr's namespaceName metadata expects.
output fqdn string = split(split(split(namespace.properties.serviceBusEndpoint, '//')[1], '/')[0], ':')[0]
