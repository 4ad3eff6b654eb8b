// Package openapi embeds the generated OpenAPI 3.0 documents of the UIAS
// protos, one per proto file (protoc-gen-openapiv2, converted by
// tools/swagger-to-openapi3; see `make proto`). Each component registers its
// own (module.Module.OpenAPI); the gateway merges those of the components it
// serves, adds their security and serves the result at /openapi.json.
package openapi

import _ "embed"

// Identity is the OpenAPI 3.0 document of uias/identity/v1/identity.proto
// (AuthService and AdminService), without security requirements.
//
//go:embed uias/identity/v1/identity.openapi.json
var Identity []byte

// Ticket is the OpenAPI 3.0 document of uias/ticket/v1/ticket.proto
// (TicketAdminService; TicketService has no REST mapping).
//
//go:embed uias/ticket/v1/ticket.openapi.json
var Ticket []byte

// TicketSessions is the OpenAPI 3.0 document of
// uias/ticket/v1/sessions.proto (TicketSessionsService), without security
// requirements.
//
//go:embed uias/ticket/v1/sessions.openapi.json
var TicketSessions []byte

// Audit is the OpenAPI 3.0 document of uias/audit/v1/audit.proto
// (AuditLogService), without security requirements.
//
//go:embed uias/audit/v1/audit.openapi.json
var Audit []byte

// AuditReports is the OpenAPI 3.0 document of uias/audit/v1/reports.proto
// (AuditReportService), without security requirements.
//
//go:embed uias/audit/v1/reports.openapi.json
var AuditReports []byte

// AuditAnalytics is the OpenAPI 3.0 document of
// uias/audit/v1/analytics.proto (AuditAnalyticsService), without security
// requirements.
//
//go:embed uias/audit/v1/analytics.openapi.json
var AuditAnalytics []byte

// IdentityFinger is the OpenAPI 3.0 document of
// uias/identity/v1/finger.proto (FingerService), without security
// requirements.
//
//go:embed uias/identity/v1/finger.openapi.json
var IdentityFinger []byte

// IdentityDirectory is the OpenAPI 3.0 document of
// uias/identity/v1/directory.proto (DirectoryService), without security
// requirements.
//
//go:embed uias/identity/v1/directory.openapi.json
var IdentityDirectory []byte

// Authz is the OpenAPI 3.0 document of uias/authz/v1/authz.proto
// (AuthzService and AuthzAdminService), without security requirements.
//
//go:embed uias/authz/v1/authz.openapi.json
var Authz []byte

// Sync is the OpenAPI 3.0 document of uias/sync/v1/sync.proto
// (SyncAdminService), without security requirements.
//
//go:embed uias/sync/v1/sync.openapi.json
var Sync []byte

// SyncProvision is the OpenAPI 3.0 document of
// uias/sync/v1/provision.proto (SyncProvisioningService), without security
// requirements.
//
//go:embed uias/sync/v1/provision.openapi.json
var SyncProvision []byte
