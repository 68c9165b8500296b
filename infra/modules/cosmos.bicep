// Cosmos DB for NoSQL, serverless (pay per request, nothing when idle), Entra ID only.
// Holds the Dapr state store `statestore` of inventory-service: database + container are created
// here (the Dapr component reads the container at start-up and never creates it), and the only
// data-plane grant is Cosmos DB Built-in Data Contributor for inventory-service, scoped to that
// one container.

@description('Location of the account.')
param location string

@description('Tags applied to the account.')
param tags object

@description('Account name: 3-44 lower-case letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(44)
param name string

@description('Database name (Dapr metadata `database`).')
param databaseName string

@description('Container name (Dapr metadata `collection`).')
param containerName string

@description('Principal id of the identity that gets read/write access to the container (inventory-service).')
param dataContributorPrincipalId string

// Cosmos DB data-plane built-in role "Cosmos DB Built-in Data Contributor" (account-relative id).
var dataContributorRoleId = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2025-04-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: [
      {
        name: 'EnableServerless'
      }
    ]
    consistencyPolicy: {
      // Strong, not the usual Session: Dapr's Cosmos DB state store sends no session token, so
      // on a Session account its reads are single-replica reads that can miss a write
      // acknowledged a moment before. inventory-service needs every read to see every write
      // acknowledged before it began, see the Cosmos DB section of
      // inventory-service/src/store.rs; in one region, Strong reads a quorum. Reads cost twice
      // the RU, see docs/deploy-azure.md.
      defaultConsistencyLevel: 'Strong'
    }
    // Entra ID only (no account keys), and no metadata writes through the data plane either:
    // databases/containers change only through ARM (this file).
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    // checkov:skip=CKV_AZURE_101: Public endpoint kept: Consumption container apps without a VNet reach Cosmos over it; keys are disabled, so every request needs an Entra token with a data-plane role.
    publicNetworkAccess: 'Enabled'
    // checkov:skip=CKV_AZURE_99: No IP firewall: Consumption apps have no stable egress IP without a VNet; access is Entra-only (local auth off) and limited to one container by RBAC.
    enableAutomaticFailover: false
    enableMultipleWriteLocations: false
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2025-04-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

resource container 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2025-04-15' = {
  parent: database
  name: containerName
  properties: {
    resource: {
      id: containerName
      // Dapr's state.azure.cosmosdb requires exactly this path (case-sensitive).
      partitionKey: {
        paths: [
          '/partitionKey'
        ]
        kind: 'Hash'
        version: 2
      }
      // -1 = TTL enabled without a default expiry, so Dapr's per-item ttlInSeconds works.
      defaultTtl: -1
    }
  }
}

// principalId comes from the identity module's output, so ARM creates this assignment only after
// the identity exists. Unlike Microsoft.Authorization/roleAssignments, sqlRoleAssignments have no
// principalType to skip the directory lookup, so a principal that Entra ID has not replicated yet
// can still fail with "principal not found" on a first provision: rerun `azd provision`
// (docs/deploy-azure.md, Troubleshooting).
resource stateContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2025-04-15' = {
  parent: account
  name: guid(account.id, containerName, dataContributorPrincipalId, dataContributorRoleId)
  properties: {
    principalId: dataContributorPrincipalId
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    // Narrowest scope Dapr works with: the component only reads the container and its items.
    scope: '${account.id}/dbs/${databaseName}/colls/${containerName}'
  }
  dependsOn: [
    container
  ]
}

output name string = account.name
output endpoint string = account.properties.documentEndpoint
