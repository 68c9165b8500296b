// Read access to the data plane for the developer who runs `azd provision` (AZURE_PRINCIPAL_ID),
// deployed only when that principal is known: browse messages and dead letters in the Service
// Bus namespace, and read the state documents in Cosmos DB. Read only: nothing here can send,
// complete or write.

@description('Object id of the developer (or CI principal) that gets read access.')
param principalId string

@description('Kind of that principal: User, Group or ServicePrincipal.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param principalType string

@description('Name of the Service Bus namespace (same resource group).')
param serviceBusNamespaceName string

@description('Name of the Cosmos DB account (same resource group).')
param cosmosAccountName string

// Built-in roles: Azure Service Bus Data Receiver; Cosmos DB Built-in Data Reader (data plane).
var dataReceiverRoleId = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
var cosmosDataReaderRoleId = '00000000-0000-0000-0000-000000000001'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource account 'Microsoft.DocumentDB/databaseAccounts@2025-04-15' existing = {
  name: cosmosAccountName
}

resource developerReceives 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace.id, principalId, dataReceiverRoleId)
  scope: namespace
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiverRoleId)
    description: 'The deploying developer peeks at messages and dead letters.'
  }
}

resource developerReadsState 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2025-04-15' = {
  parent: account
  name: guid(account.id, principalId, cosmosDataReaderRoleId)
  properties: {
    principalId: principalId
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${cosmosDataReaderRoleId}'
    scope: account.id
  }
}
