// The azd "keep the deployed image" pattern: main.bicep deploys this module only when the app
// already exists (SERVICE_<NAME>_RESOURCE_EXISTS=true, which azd sets before provisioning) and
// passes the image it returns to the app module, so `azd provision` never resets a deployed app
// to the placeholder image. A separate deployment, so the read happens before the app update.

@description('Name of an existing container app.')
param name string

resource existingApp 'Microsoft.App/containerApps@2025-07-01' existing = {
  name: name
}

output image string = existingApp.properties.template.containers[0].image
