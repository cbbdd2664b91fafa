-- Demo: the production ERP database as it was BEFORE the manual "Railway schema sync" repair
-- (see README.md next to this file). Plain PostgreSQL, meant to be run on an EMPTY database as one
-- script inside one transaction that the caller opens and closes (no transaction control in this file).
--
-- What it models:
--   * 16 of the 47 baseline tables exist (created long ago with `prisma db push` / by hand), with the
--     baseline column definitions EXCEPT the drift listed below,
--   * only part of the baseline indexes / FKs / CHECKs exist, under the baseline names, except one
--     unique index that exists under a different name,
--   * _prisma_migrations holds nothing but three attempts of the legacy migration
--     20250926_add_roles_table (it failed because "roles" already existed): two rolled back, one still
--     unfinished (the state that makes `prisma migrate deploy` stop with P3009),
--   * 20 users, 3 roles, 3 clients, 5 modules and the system_health_config singleton (id 1).
--
-- Drift that a sync must REPORT, not fix:
--   * users."legacy_flag" BOOLEAN NOT NULL DEFAULT false   -- extra column added by hand (not in baseline)
--   * tasks."title" VARCHAR(100)                           -- baseline says TEXT
--   * unique index "users_email_unique" on users(email)      -- baseline calls the same index "users_email_key"
-- Drift that the baseline repair fills in:
--   * system_health_config lacks "metricsRetentionDays" and "aggregateRetentionDays"
--   * 31 missing tables, the missing enum "ApprovalStatus", missing indexes / FKs / CHECKs

-- CreateEnum
CREATE TYPE "PaymentStatus" AS ENUM ('DRAFT', 'PENDING', 'APPROVED', 'REJECTED', 'PAID', 'CANCELLED');

-- CreateEnum
CREATE TYPE "TaskStatus" AS ENUM ('TODO', 'IN_PROGRESS', 'BLOCKED', 'DONE');

-- CreateTable
CREATE TABLE "users" (
    "id" SERIAL NOT NULL,
    "username" VARCHAR(50) NOT NULL,
    "email" VARCHAR(255) NOT NULL,
    "password" TEXT NOT NULL,
    "role" VARCHAR(50) NOT NULL DEFAULT 'STAFF',
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "client_id" UUID,
    "lastLoginAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "legacy_flag" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "roles" (
    "id" SERIAL NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "description" TEXT,
    "level" INTEGER NOT NULL DEFAULT 0,
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "roles_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_logs" (
    "id" SERIAL NOT NULL,
    "user_id" INTEGER,
    "action" VARCHAR(100) NOT NULL,
    "entity_type" VARCHAR(100),
    "entity_id" VARCHAR(100),
    "old_values" JSONB,
    "new_values" JSONB,
    "ip_address" VARCHAR(45),
    "user_agent" TEXT,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_logs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "user_sessions" (
    "id" SERIAL NOT NULL,
    "user_id" INTEGER NOT NULL,
    "session_token" VARCHAR(255) NOT NULL,
    "ip_address" VARCHAR(45),
    "user_agent" TEXT,
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "expires_at" TIMESTAMP(6) NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "user_sessions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rbac_actions" (
    "id" SERIAL NOT NULL,
    "name" VARCHAR(50) NOT NULL,
    "display_name" VARCHAR(100),
    "description" TEXT,
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rbac_actions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rbac_roles" (
    "id" SERIAL NOT NULL,
    "name" VARCHAR(100) NOT NULL,
    "display_name" VARCHAR(150),
    "description" TEXT,
    "level" INTEGER NOT NULL DEFAULT 0,
    "is_system" BOOLEAN NOT NULL DEFAULT false,
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rbac_roles_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rbac_routes" (
    "id" SERIAL NOT NULL,
    "path" VARCHAR(255) NOT NULL,
    "method" VARCHAR(10) NOT NULL DEFAULT 'GET',
    "name" VARCHAR(100),
    "module" VARCHAR(100),
    "is_protected" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rbac_routes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rbac_permissions" (
    "id" SERIAL NOT NULL,
    "role_id" INTEGER NOT NULL,
    "action_id" INTEGER NOT NULL,
    "route_id" INTEGER NOT NULL,
    "granted" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rbac_permissions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rbac_user_roles" (
    "id" SERIAL NOT NULL,
    "user_id" INTEGER NOT NULL,
    "role_id" INTEGER NOT NULL,
    "assigned_by" INTEGER,
    "assigned_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMP(6),

    CONSTRAINT "rbac_user_roles_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rbac_user_permissions" (
    "id" SERIAL NOT NULL,
    "user_id" INTEGER NOT NULL,
    "action_id" INTEGER NOT NULL,
    "route_id" INTEGER NOT NULL,
    "granted" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rbac_user_permissions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "clients" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" VARCHAR(255) NOT NULL,
    "slug" VARCHAR(100) NOT NULL,
    "legal_name" VARCHAR(255),
    "client_code" VARCHAR(50),
    "client_type" VARCHAR(50) NOT NULL DEFAULT 'Company',
    "super_admin_id" INTEGER,
    "productType" VARCHAR(50) NOT NULL DEFAULT 'BUSINESS_ERP',
    "settings" JSONB NOT NULL DEFAULT '{}',
    "subscriptionPlan" VARCHAR(50) DEFAULT 'free',
    "subscriptionStatus" VARCHAR(50) DEFAULT 'active',
    "onboarding_status" VARCHAR(50) NOT NULL DEFAULT 'pending',
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "clients_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "modules" (
    "id" SERIAL NOT NULL,
    "module_name" VARCHAR(100) NOT NULL,
    "display_name" VARCHAR(150) NOT NULL,
    "description" TEXT,
    "icon" VARCHAR(100),
    "route" VARCHAR(255),
    "productType" VARCHAR(50) NOT NULL DEFAULT 'BUSINESS_ERP',
    "sort_order" INTEGER NOT NULL DEFAULT 0,
    "is_active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "modules_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "permissions" (
    "id" SERIAL NOT NULL,
    "role_id" INTEGER NOT NULL,
    "module_id" INTEGER NOT NULL,
    "can_view" BOOLEAN NOT NULL DEFAULT false,
    "can_create" BOOLEAN NOT NULL DEFAULT false,
    "can_edit" BOOLEAN NOT NULL DEFAULT false,
    "can_delete" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "permissions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "payment_requests" (
    "id" SERIAL NOT NULL,
    "requestId" VARCHAR(50) NOT NULL,
    "client_id" UUID,
    "createdById" INTEGER NOT NULL,
    "clientName" VARCHAR(255) NOT NULL,
    "clientEmail" VARCHAR(255),
    "clientPhone" VARCHAR(50),
    "subtotal" DECIMAL(15,2) NOT NULL DEFAULT 0,
    "taxAmount" DECIMAL(15,2) NOT NULL DEFAULT 0,
    "totalAmount" DECIMAL(15,2) NOT NULL,
    "currency" VARCHAR(3) NOT NULL DEFAULT 'INR',
    "status" "PaymentStatus" NOT NULL DEFAULT 'DRAFT',
    "description" TEXT,
    "dueDate" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "payment_requests_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "tasks" (
    "id" SERIAL NOT NULL,
    "title" VARCHAR(100) NOT NULL,
    "description" TEXT,
    "status" "TaskStatus" NOT NULL DEFAULT 'TODO',
    "priority" VARCHAR(20) NOT NULL DEFAULT 'MEDIUM',
    "paymentRequestId" INTEGER,
    "expenseId" INTEGER,
    "createdById" INTEGER NOT NULL,
    "assigneeId" INTEGER,
    "currentLevel" INTEGER NOT NULL DEFAULT 0,
    "dueDate" TIMESTAMP(3),
    "completedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tasks_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "system_health_config" (
    "id" SERIAL NOT NULL,
    "thresholds" JSONB NOT NULL,
    "backupLocation" VARCHAR(255) NOT NULL,
    "refreshInterval" INTEGER DEFAULT 30000,
    "updated_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "system_health_config_pkey" PRIMARY KEY ("id")
);

-- CreateIndex (hand-made: same definition as the baseline "users_email_key", different name)
CREATE UNIQUE INDEX "users_email_unique" ON "users"("email");

-- CreateIndex
CREATE UNIQUE INDEX "users_username_key" ON "users"("username");

-- CreateIndex
CREATE UNIQUE INDEX "roles_name_key" ON "roles"("name");

-- CreateIndex
CREATE UNIQUE INDEX "user_sessions_session_token_key" ON "user_sessions"("session_token");

-- CreateIndex
CREATE INDEX "user_sessions_user_id_idx" ON "user_sessions"("user_id");

-- CreateIndex
CREATE UNIQUE INDEX "rbac_actions_name_key" ON "rbac_actions"("name");

-- CreateIndex
CREATE UNIQUE INDEX "rbac_roles_name_key" ON "rbac_roles"("name");

-- CreateIndex
CREATE UNIQUE INDEX "rbac_routes_path_method_key" ON "rbac_routes"("path", "method");

-- CreateIndex
CREATE UNIQUE INDEX "rbac_permissions_role_id_action_id_route_id_key" ON "rbac_permissions"("role_id", "action_id", "route_id");

-- CreateIndex
CREATE UNIQUE INDEX "rbac_user_roles_user_id_role_id_key" ON "rbac_user_roles"("user_id", "role_id");

-- CreateIndex
CREATE UNIQUE INDEX "clients_slug_key" ON "clients"("slug");

-- CreateIndex
CREATE UNIQUE INDEX "modules_module_name_key" ON "modules"("module_name");

-- CreateIndex
CREATE UNIQUE INDEX "permissions_role_id_module_id_key" ON "permissions"("role_id", "module_id");

-- CreateIndex
CREATE UNIQUE INDEX "payment_requests_requestId_key" ON "payment_requests"("requestId");

-- CreateIndex
CREATE INDEX "payment_requests_status_idx" ON "payment_requests"("status");

-- AddForeignKey
ALTER TABLE "audit_logs" ADD CONSTRAINT "audit_logs_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "user_sessions" ADD CONSTRAINT "user_sessions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rbac_permissions" ADD CONSTRAINT "rbac_permissions_role_id_fkey" FOREIGN KEY ("role_id") REFERENCES "rbac_roles"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rbac_permissions" ADD CONSTRAINT "rbac_permissions_action_id_fkey" FOREIGN KEY ("action_id") REFERENCES "rbac_actions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rbac_permissions" ADD CONSTRAINT "rbac_permissions_route_id_fkey" FOREIGN KEY ("route_id") REFERENCES "rbac_routes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rbac_user_roles" ADD CONSTRAINT "rbac_user_roles_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "rbac_user_roles" ADD CONSTRAINT "rbac_user_roles_role_id_fkey" FOREIGN KEY ("role_id") REFERENCES "rbac_roles"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "permissions" ADD CONSTRAINT "permissions_role_id_fkey" FOREIGN KEY ("role_id") REFERENCES "roles"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "permissions" ADD CONSTRAINT "permissions_module_id_fkey" FOREIGN KEY ("module_id") REFERENCES "modules"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "payment_requests" ADD CONSTRAINT "payment_requests_createdById_fkey" FOREIGN KEY ("createdById") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_paymentRequestId_fkey" FOREIGN KEY ("paymentRequestId") REFERENCES "payment_requests"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_createdById_fkey" FOREIGN KEY ("createdById") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddCheckConstraint
ALTER TABLE "payment_requests" ADD CONSTRAINT "payment_requests_totalAmount_check" CHECK ("totalAmount" >= 0);

-- Prisma Migrate bookkeeping table (exact DDL Prisma uses)
CREATE TABLE "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);

-- Two attempts rolled back with `prisma migrate resolve --rolled-back`, the latest one still failed/unfinished
INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at", "applied_steps_count") VALUES
    ('3f6c2a1e-8d4b-4e7a-9c51-0b2d7e4f9a13', '1a460942df59588378c45f1a9b4b04e2a925d76121f56c8e8247e94203d7213f', NULL, '20250926_add_roles_table', E'Database error code: 42P07\n\nDatabase error:\nERROR: relation "roles" already exists\n\nDbError { severity: "ERROR", parsed_severity: Some(Error), code: SqlState(E42P07), message: "relation \\"roles\\" already exists", detail: None, hint: None, position: None, where_: None, schema: None, table: None, column: None, datatype: None, constraint: None, file: Some("heap.c"), line: Some(1160), routine: Some("heap_create_with_catalog") }\n\n   0: sql_schema_connector::apply_migration::apply_script\n           with migration_name="20250926_add_roles_table"\n             at schema-engine/connectors/sql-schema-connector/src/apply_migration.rs:106\n   1: schema_core::commands::apply_migrations::Applying migration\n           with migration_name="20250926_add_roles_table"\n             at schema-engine/core/src/commands/apply_migrations.rs:91', '2025-09-27 08:15:40.117+00', '2025-09-26 14:02:11.482+00', 0),
    ('9a1d5e2c-4b7f-4c38-a6e0-5f1b3c8d2e47', '1a460942df59588378c45f1a9b4b04e2a925d76121f56c8e8247e94203d7213f', NULL, '20250926_add_roles_table', E'Database error code: 42P07\n\nDatabase error:\nERROR: relation "roles" already exists\n\nDbError { severity: "ERROR", parsed_severity: Some(Error), code: SqlState(E42P07), message: "relation \\"roles\\" already exists", detail: None, hint: None, position: None, where_: None, schema: None, table: None, column: None, datatype: None, constraint: None, file: Some("heap.c"), line: Some(1160), routine: Some("heap_create_with_catalog") }\n\n   0: sql_schema_connector::apply_migration::apply_script\n           with migration_name="20250926_add_roles_table"\n             at schema-engine/connectors/sql-schema-connector/src/apply_migration.rs:106\n   1: schema_core::commands::apply_migrations::Applying migration\n           with migration_name="20250926_add_roles_table"\n             at schema-engine/core/src/commands/apply_migrations.rs:91', '2025-10-03 11:02:33.250+00', '2025-10-03 10:44:05.903+00', 0),
    ('c2e8f4a6-1d3b-4f95-b7a2-8e6c0d4f1b59', '1a460942df59588378c45f1a9b4b04e2a925d76121f56c8e8247e94203d7213f', NULL, '20250926_add_roles_table', E'Database error code: 42P07\n\nDatabase error:\nERROR: relation "roles" already exists\n\nDbError { severity: "ERROR", parsed_severity: Some(Error), code: SqlState(E42P07), message: "relation \\"roles\\" already exists", detail: None, hint: None, position: None, where_: None, schema: None, table: None, column: None, datatype: None, constraint: None, file: Some("heap.c"), line: Some(1160), routine: Some("heap_create_with_catalog") }\n\n   0: sql_schema_connector::apply_migration::apply_script\n           with migration_name="20250926_add_roles_table"\n             at schema-engine/connectors/sql-schema-connector/src/apply_migration.rs:106\n   1: schema_core::commands::apply_migrations::Applying migration\n           with migration_name="20250926_add_roles_table"\n             at schema-engine/core/src/commands/apply_migrations.rs:91', NULL, '2025-11-21 18:30:09.664+00', 0);

-- Data: clients
INSERT INTO "clients" ("id", "name", "slug", "legal_name", "client_code", "client_type", "productType", "settings", "subscriptionPlan", "subscriptionStatus", "onboarding_status", "is_active", "createdAt", "updatedAt") VALUES
    ('5b0c7f4e-2a1d-4c8e-9f3a-6d2e8b1c4a01', 'Acme Traders', 'acme-traders', 'Acme Traders Pvt Ltd', 'ACME-001', 'Company', 'BUSINESS_ERP', '{"currency": "INR"}', 'pro', 'active', 'completed', true, '2025-06-02 10:00:00', '2025-06-02 10:00:00'),
    ('8e3d1a6b-7c2f-4b90-a41e-2f5c9d0b7e02', 'Northwind Logistics', 'northwind-logistics', 'Northwind Logistics LLP', 'NWL-002', 'Company', 'BUSINESS_ERP', '{"currency": "INR"}', 'pro', 'active', 'completed', true, '2025-06-15 11:30:00', '2025-06-15 11:30:00'),
    ('c47a9b2d-0e5f-4a13-8b6c-9d1e3f2a5b03', 'Globex Retail', 'globex-retail', 'Globex Retail Ltd', 'GBX-003', 'Company', 'BUSINESS_ERP', '{"currency": "INR"}', 'pro', 'active', 'completed', true, '2025-07-01 09:15:00', '2025-07-01 09:15:00');

-- Data: roles
INSERT INTO "roles" ("id", "name", "description", "level", "is_active", "created_at", "updated_at") VALUES
    (1, 'ADMIN', 'Full access to the tenant', 100, true, '2025-06-01 08:00:00', '2025-06-01 08:00:00'),
    (2, 'MANAGER', 'Approves payment requests and tasks', 50, true, '2025-06-01 08:00:00', '2025-06-01 08:00:00'),
    (3, 'STAFF', 'Day-to-day operations', 10, true, '2025-06-01 08:00:00', '2025-06-01 08:00:00');

-- Data: modules
INSERT INTO "modules" ("id", "module_name", "display_name", "description", "icon", "route", "productType", "sort_order", "is_active", "created_at") VALUES
    (1, 'finance', 'Finance', 'Finance module', 'wallet', '/finance', 'BUSINESS_ERP', 10, true, '2025-06-01 08:00:00'),
    (2, 'hr', 'Human Resources', 'Human Resources module', 'users', '/hr', 'BUSINESS_ERP', 20, true, '2025-06-01 08:00:00'),
    (3, 'inventory', 'Inventory', 'Inventory module', 'boxes', '/inventory', 'BUSINESS_ERP', 30, true, '2025-06-01 08:00:00'),
    (4, 'procurement', 'Procurement', 'Procurement module', 'cart', '/procurement', 'BUSINESS_ERP', 40, true, '2025-06-01 08:00:00'),
    (5, 'reports', 'Reports', 'Reports module', 'chart', '/reports', 'BUSINESS_ERP', 50, true, '2025-06-01 08:00:00');

-- Data: users (password values are fake bcrypt-shaped strings, not real hashes)
INSERT INTO "users" ("id", "username", "email", "password", "role", "isActive", "client_id", "lastLoginAt", "createdAt", "updatedAt", "legacy_flag") VALUES
    (1, 'admin', 'admin@erp-demo.example', '$2b$10$1gzGVk/XqfbRQTsVU8b07L7QeH4qTxGjnqo2dQcoNkSE9CxaE38B1', 'ADMIN', true, NULL, '2025-11-02 09:07:00', '2025-06-02 09:03:00', '2025-06-02 09:03:00', false),
    (2, 'priya.sharma', 'priya.sharma@erp-demo.example', '$2b$10$YvFw7mXYzRopZgh0/YM36/3DPc4ib.f9.dTv/uxDc3HyOvGvYQSIQ', 'ADMIN', true, '5b0c7f4e-2a1d-4c8e-9f3a-6d2e8b1c4a01', '2025-11-03 10:14:00', '2025-06-03 09:06:00', '2025-06-03 09:06:00', false),
    (3, 'rahul.verma', 'rahul.verma@erp-demo.example', '$2b$10$.xXxQRwq5.gDZQb5XnwTJhPmJesijbIQbNj.GDqu2KYdJxLzy./pe', 'MANAGER', true, '8e3d1a6b-7c2f-4b90-a41e-2f5c9d0b7e02', '2025-11-04 11:21:00', '2025-06-04 09:09:00', '2025-06-04 09:09:00', true),
    (4, 'anita.desai', 'anita.desai@erp-demo.example', '$2b$10$8ZreuaBbxlPuHVCDFYO6oJuT2SDraeC2V2LEMTI/yuOryS5dzWuaT', 'MANAGER', true, 'c47a9b2d-0e5f-4a13-8b6c-9d1e3f2a5b03', '2025-11-05 12:28:00', '2025-06-05 09:12:00', '2025-06-05 09:12:00', false),
    (5, 'vikram.singh', 'vikram.singh@erp-demo.example', '$2b$10$Sc9cjboqKHwEIxIegEDZm0jusRe4t0EcHhsK21ZboosIMveoKm9Fv', 'MANAGER', true, '5b0c7f4e-2a1d-4c8e-9f3a-6d2e8b1c4a01', '2025-11-06 13:35:00', '2025-06-06 09:15:00', '2025-06-06 09:15:00', false),
    (6, 'neha.gupta', 'neha.gupta@erp-demo.example', '$2b$10$fEqPzmGHIdzdb9/ConOBjMW0Sv9HKV5uM/tL5UbyKd8f2GIK69JRk', 'MANAGER', true, '8e3d1a6b-7c2f-4b90-a41e-2f5c9d0b7e02', '2025-11-07 14:42:00', '2025-06-07 09:18:00', '2025-06-07 09:18:00', false),
    (7, 'arjun.mehta', 'arjun.mehta@erp-demo.example', '$2b$10$SjumHUbMOFHDzWaV00n8bjjB6xghw2ipOvGwH6De1thKiOzoA0JqL', 'MANAGER', true, 'c47a9b2d-0e5f-4a13-8b6c-9d1e3f2a5b03', '2025-11-08 15:49:00', '2025-06-08 09:21:00', '2025-06-08 09:21:00', true),
    (8, 'kavya.iyer', 'kavya.iyer@erp-demo.example', '$2b$10$xXWtSl08ItpzyBoEyUoC0U2E6DkQfMturwWBy0BPnLE7/lCaaWG/n', 'STAFF', true, '5b0c7f4e-2a1d-4c8e-9f3a-6d2e8b1c4a01', '2025-11-09 16:56:00', '2025-06-09 09:24:00', '2025-06-09 09:24:00', false),
    (9, 'rohan.kapoor', 'rohan.kapoor@erp-demo.example', '$2b$10$45962rK8KxTd.gghOyZqWiYPKAqAXyTj1xDHT9VYgKB8pYAmXm8uQ', 'STAFF', true, '8e3d1a6b-7c2f-4b90-a41e-2f5c9d0b7e02', '2025-11-10 17:03:00', '2025-06-10 09:27:00', '2025-06-10 09:27:00', false),
    (10, 'sneha.patel', 'sneha.patel@erp-demo.example', '$2b$10$kuD9bcZ0EdpuwwyDzs2x/VqWKZzQmP5XK59LKKtRtj5eViFLjPTbW', 'STAFF', true, 'c47a9b2d-0e5f-4a13-8b6c-9d1e3f2a5b03', '2025-11-11 08:10:00', '2025-06-11 09:30:00', '2025-06-11 09:30:00', false),
    (11, 'amit.joshi', 'amit.joshi@erp-demo.example', '$2b$10$SHlfFJxEiZsUhqfInU2LI0dOYEsED5PazJDc6jSwLhkYKqxQQNBSq', 'STAFF', true, '5b0c7f4e-2a1d-4c8e-9f3a-6d2e8b1c4a01', '2025-11-12 09:17:00', '2025-06-12 09:33:00', '2025-06-12 09:33:00', false),
    (12, 'pooja.nair', 'pooja.nair@erp-demo.example', '$2b$10$dk1zgVuVQNWvUN1.50J.fWs5Coxt3qCNwlSDPlzLNEJ2.Jv9Lr57p', 'STAFF', true, '8e3d1a6b-7c2f-4b90-a41e-2f5c9d0b7e02', '2025-11-13 10:24:00', '2025-06-13 09:36:00', '2025-06-13 09:36:00', true),
    (13, 'sanjay.rao', 'sanjay.rao@erp-demo.example', '$2b$10$eu4kfJwPZKNH3XufzKkOw/Qe6zvhaUIFWnr4QavDTnuJKRj6CS3E2', 'STAFF', true, 'c47a9b2d-0e5f-4a13-8b6c-9d1e3f2a5b03', '2025-11-14 11:31:00', '2025-06-14 09:39:00', '2025-06-14 09:39:00', false),
    (14, 'divya.menon', 'divya.menon@erp-demo.example', '$2b$10$e9Q5DyUeZ1gtyOk8rV0UpxQyTIWCViPnBA4yvtUIziWPdINIAbGYI', 'STAFF', true, '5b0c7f4e-2a1d-4c8e-9f3a-6d2e8b1c4a01', '2025-11-15 12:38:00', '2025-06-15 09:42:00', '2025-06-15 09:42:00', false),
    (15, 'karan.malhotra', 'karan.malhotra@erp-demo.example', '$2b$10$G7XVPoRm7r12rOG.QsEphVn2FddSSWDIaNdrw9T0c9r3k//Egoteq', 'STAFF', true, '8e3d1a6b-7c2f-4b90-a41e-2f5c9d0b7e02', '2025-11-16 13:45:00', '2025-06-16 09:45:00', '2025-06-16 09:45:00', false),
    (16, 'meera.pillai', 'meera.pillai@erp-demo.example', '$2b$10$c.bQ8sT4rW7KyYFaWda.BGGPXQJccuNcaaVhS9KU6a2T4U/.W0j6F', 'STAFF', false, 'c47a9b2d-0e5f-4a13-8b6c-9d1e3f2a5b03', NULL, '2025-06-17 09:48:00', '2025-06-17 09:48:00', false),
    (17, 'nikhil.bose', 'nikhil.bose@erp-demo.example', '$2b$10$O.qPCbV/7lyqKeLKivTGeWwzYJwAkpCNlagUY1SOYb5m6UmkJJKfd', 'STAFF', true, '5b0c7f4e-2a1d-4c8e-9f3a-6d2e8b1c4a01', '2025-11-18 15:59:00', '2025-06-18 09:51:00', '2025-06-18 09:51:00', false),
    (18, 'isha.reddy', 'isha.reddy@erp-demo.example', '$2b$10$E0LFzZdiJ1JwCCZeTVik7R5cobrCZ9lWCPc0g.sBdjnK5SNl5qm77', 'STAFF', true, '8e3d1a6b-7c2f-4b90-a41e-2f5c9d0b7e02', '2025-11-19 16:06:00', '2025-06-19 09:54:00', '2025-06-19 09:54:00', false),
    (19, 'tarun.chawla', 'tarun.chawla@erp-demo.example', '$2b$10$eVhSTlCm/VTyiyvHCKamviXoteS4eVNETQhJg.KqyZYi/ttspczT7', 'STAFF', false, 'c47a9b2d-0e5f-4a13-8b6c-9d1e3f2a5b03', NULL, '2025-06-20 09:57:00', '2025-06-20 09:57:00', false),
    (20, 'lata.kulkarni', 'lata.kulkarni@erp-demo.example', '$2b$10$XKGOkRk0GgOKaRO.s5gRuylybVOsDThXAPt54YkuB8ZOqt1jO.rJa', 'STAFF', true, '5b0c7f4e-2a1d-4c8e-9f3a-6d2e8b1c4a01', NULL, '2025-06-21 09:00:00', '2025-06-21 09:00:00', false);

-- Data: the system_health_config singleton, as the app wrote it before the retention columns existed
INSERT INTO "system_health_config" ("id", "thresholds", "backupLocation", "refreshInterval", "updated_at") VALUES
    (1, '{"latency":{"warning":500,"critical":1000},"p95Latency":{"warning":800,"critical":1500},"errorRate":{"warning":1,"critical":5},"cacheHitRate":{"warning":70,"critical":50},"slowQueries":{"warning":100,"critical":200},"cpuUsage":{"warning":70,"critical":85},"memoryUsage":{"warning":80,"critical":90}}'::jsonb, '/backups/railway', 30000, '2025-11-20 12:00:00');

-- Keep the SERIAL sequences ahead of the explicit ids above
SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max("id") FROM "users"));
SELECT setval(pg_get_serial_sequence('roles', 'id'), (SELECT max("id") FROM "roles"));
SELECT setval(pg_get_serial_sequence('modules', 'id'), (SELECT max("id") FROM "modules"));
SELECT setval(pg_get_serial_sequence('system_health_config', 'id'), (SELECT max("id") FROM "system_health_config"));

-- The app's own telemetry and usage tables: it has been writing them all along (the demo data generator
-- fills them). Present without their foreign keys, which the sync adds.
CREATE TABLE "client_usage_events" (
    "id" SERIAL NOT NULL,
    "client_id" UUID NOT NULL,
    "module_id" INTEGER,
    "user_id" INTEGER,
    "event_type" VARCHAR(50) NOT NULL,
    "meta" JSONB,
    "occurred_at" TIMESTAMP(6) NOT NULL DEFAULT now(),

    CONSTRAINT "client_usage_events_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "client_usage_events_client_id_idx" ON "client_usage_events"("client_id");
CREATE INDEX "client_usage_events_module_id_idx" ON "client_usage_events"("module_id");
CREATE INDEX "client_usage_events_occurred_at_idx" ON "client_usage_events"("occurred_at");

CREATE TABLE "system_metric_samples" (
    "id" SERIAL NOT NULL,
    "latencyMs" INTEGER,
    "errorRatePct" DOUBLE PRECISION,
    "reqCount" INTEGER DEFAULT 0,
    "errCount" INTEGER DEFAULT 0,
    "collected_at" TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "system_metric_samples_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "system_metric_samples_collected_at_idx" ON "system_metric_samples"("collected_at");
