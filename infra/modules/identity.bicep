// One user-assigned identity per service, with AcrPull on the registry.
// The role assignment lives here so that an app module taking any output of this module is
// deployed only after the identity can pull (an app created before its AcrPull exists fails to
// provision).

@description('Location of the identity.')
param location string

@description('Tags applied to the identity.')
param tags object

@description('Name of the user-assigned identity.')
param name string

@description('Name of the container registry (same resource group) to grant AcrPull on.')
param registryName string

// Built-in role: AcrPull.
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' existing = {
  name: registryName
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identity.id, acrPullRoleId)
  scope: registry
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    description: 'AcrPull for ${name}: image pull by the container app.'
  }
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
