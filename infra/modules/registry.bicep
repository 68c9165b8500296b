// Azure Container Registry. No admin user, no anonymous pull: images are pushed by azd with the
// developer's Entra token (or built by ACR Tasks, `docker.remoteBuild: true`) and pulled by each
// app's user-assigned identity holding AcrPull (identity.bicep).

@description('Location of the registry.')
param location string

@description('Tags applied to the registry.')
param tags object

@description('Registry name: 5-50 alphanumerics, globally unique.')
@minLength(5)
@maxLength(50)
param name string

resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Basic'
  }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
    // checkov:skip=CKV_AZURE_139: Public endpoint kept on purpose: private endpoints need Premium + a VNet, and ACR Tasks (azd remote build) and Consumption apps use it; access is Entra-only (admin user and anonymous pull are off).
    publicNetworkAccess: 'Enabled'
    // checkov:skip=CKV_AZURE_163: Image vulnerability scanning is the subscription-level Microsoft Defender for Containers plan, not a registry property; turn it on there.
    // checkov:skip=CKV_AZURE_166: Quarantine policy is Premium-only and needs a scanner that releases images; azd pushes straight to the deployed tag.
    networkRuleBypassOptions: 'AzureServices'
    // checkov:skip=CKV_AZURE_233: Zone redundancy for ACR is Premium-only; Basic is enough to hold four small images, and pulls happen only at revision start.
    zoneRedundancy: 'Disabled'
    policies: {
      // Stated, not left to the default: azd (and `az acr login`) exchange the developer's
      // ARM-audience Entra token for a registry token; 'disabled' would break `azd deploy`.
      azureADAuthenticationAsArmPolicy: {
        status: 'enabled'
      }
    }
  }
}

output id string = registry.id
output name string = registry.name
output loginServer string = registry.properties.loginServer
