"""A Prisma migrations folder shaped like a real product's unsquashed history (written for these tests).

`write_realistic_history(dest, contrib=...)` writes 150+ migrations of a made-up help-desk product: an init
with text/uuid ids, enums, foreign keys and indexes; then tables, columns and indexes added over time;
hand-edited `BEGIN; ... COMMIT;` scripts; lone `CREATE INDEX CONCURRENTLY`; views, functions and triggers;
enum values added and then used by later migrations; CHECK constraints; an identity column, a stored
generated column and a sequence with its own increment; statements written schema-qualified
(`"public"."Ticket"`); a column added and later dropped; folder names with spaces and mixed timestamp
styles. With `contrib=True` (a server with the contrib extensions, like Debian's PostgreSQL 15) it also has
`CREATE EXTENSION IF NOT EXISTS` for citext, pg_trgm and pgcrypto and objects using them.

Folder names are generated first, sorted in Prisma's order (`collation_key`), and the scripts are then
assigned in that order, so the history replays in the order `prisma migrate deploy` would apply it.
"""

from __future__ import annotations

from pathlib import Path

from erp_pipelines.prisma.order import collation_key

ENTITIES = [
    "Team", "Customer", "Contact", "Ticket", "Comment", "Attachment", "Tag", "TicketTag", "Macro", "SlaPolicy",
    "BusinessHours", "Holiday", "Queue", "QueueMember", "Article", "ArticleVersion", "Category", "Survey",
    "SurveyAnswer", "Webhook", "WebhookDelivery", "ApiKey", "AuditEntry", "Invoice", "InvoiceLine", "Plan",
    "Subscription", "Coupon", "Notification", "NotificationPref", "SavedView", "Automation", "AutomationRun",
    "Integration", "ImportJob", "ExportJob", "Channel", "ChannelMessage", "Shift", "TimeEntry",
]


def _ddl_for_entity(i: int, name: str) -> list[str]:
    """The migrations that grow one entity: create, add a column, index it, link it (4 scripts)."""
    id_col = ['"id" TEXT NOT NULL', '"id" UUID NOT NULL DEFAULT gen_random_uuid()', '"id" SERIAL NOT NULL'][i % 3]
    create = (
        f'-- CreateTable\nCREATE TABLE "{name}" (\n    {id_col},\n    "organizationId" TEXT NOT NULL,\n'
        f'    "title" TEXT NOT NULL,\n    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,\n'
        f'    "updatedAt" TIMESTAMP(3) NOT NULL,\n\n    CONSTRAINT "{name}_pkey" PRIMARY KEY ("id")\n);\n'
    )
    add = f'-- AlterTable\nALTER TABLE "{name}" ADD COLUMN "note" TEXT,\nADD COLUMN "position" INTEGER NOT NULL DEFAULT 0;\n'
    index = f'-- CreateIndex\nCREATE INDEX "{name}_organizationId_idx" ON "{name}"("organizationId");\n'
    qualified = '"public".' if i % 4 == 0 else ""  # some written schema-qualified, as Prisma >= 6.16.3 does
    fk = (
        f'-- AddForeignKey\nALTER TABLE {qualified}"{name}" ADD CONSTRAINT "{name}_organizationId_fkey" '
        f'FOREIGN KEY ("organizationId") REFERENCES {qualified}"Organization"("id") '
        "ON DELETE RESTRICT ON UPDATE CASCADE;\n"
    )
    return [create, add, index, fk]


INIT = """-- CreateEnum
CREATE TYPE "Role" AS ENUM ('OWNER', 'ADMIN', 'AGENT');

-- CreateEnum
CREATE TYPE "Priority" AS ENUM ('LOW', 'NORMAL', 'HIGH');

-- CreateTable
CREATE TABLE "Organization" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "slug" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Organization_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "User" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL DEFAULT 'AGENT',
    "organizationId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Organization_slug_key" ON "Organization"("slug");

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- AddForeignKey
ALTER TABLE "User" ADD CONSTRAINT "User_organizationId_fkey" FOREIGN KEY ("organizationId") REFERENCES "Organization"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"""

SPECIAL = {
    # hand-edited: an explicit transaction that adds a column, backfills it and makes it NOT NULL
    "backfill": """-- Hand-edited: backfill before NOT NULL
BEGIN;
ALTER TABLE "User" ADD COLUMN "displayName" TEXT;
UPDATE "User" SET "displayName" = coalesce("name", "email");
ALTER TABLE "User" ALTER COLUMN "displayName" SET NOT NULL;
COMMIT;
""",
    "concurrent_index": 'CREATE INDEX CONCURRENTLY "User_createdAt_idx" ON "User" ("createdAt");\n',
    "enum_value": """-- AlterEnum
ALTER TYPE "Priority" ADD VALUE 'URGENT';
""",
    "enum_value_used": """-- AlterTable
ALTER TABLE "Ticket" ADD COLUMN "priority" "Priority" NOT NULL DEFAULT 'URGENT';
""",
    "enum_value_2": """-- AlterEnum
ALTER TYPE "Role" ADD VALUE 'VIEWER' BEFORE 'AGENT';
""",
    "enum_value_2_used": """-- Hand-edited: read-only seats
ALTER TABLE "User" ALTER COLUMN "role" SET DEFAULT 'VIEWER';
""",
    "updated_at_function": """-- Hand-written trigger function
CREATE OR REPLACE FUNCTION "public"."touch_updated_at"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW."updatedAt" := now();
  RETURN NEW;
END;
$$;

CREATE TRIGGER "Ticket_touch_updated_at" BEFORE UPDATE ON "public"."Ticket"
FOR EACH ROW EXECUTE FUNCTION "public"."touch_updated_at"();
""",
    "trigger_2": """CREATE TRIGGER "Customer_touch_updated_at" BEFORE UPDATE ON "Customer"
FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
""",
    "sql_function": """CREATE FUNCTION "ticket_age_days"(created TIMESTAMP(3)) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT 0 $$;
""",
    "view": """-- Reporting view
CREATE VIEW "OpenTicketCount" AS
SELECT t."organizationId", count(*) AS "open"
FROM "public"."Ticket" t
GROUP BY t."organizationId";
""",
    "view_on_view": """CREATE VIEW "BusyOrganization" AS
SELECT o."id", o."name", c."open" FROM "Organization" o JOIN "OpenTicketCount" c ON c."organizationId" = o."id"
WHERE c."open" > 100;
""",
    "check": """-- Hand-edited
ALTER TABLE "Invoice" ADD COLUMN "amountCents" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Invoice" ADD CONSTRAINT "Invoice_amountCents_check" CHECK ("amountCents" >= 0);
""",
    "check_literal": """ALTER TABLE "Webhook" ADD COLUMN "url" TEXT NOT NULL DEFAULT 'https://public.example/hook';
ALTER TABLE "Webhook" ADD CONSTRAINT "Webhook_url_check" CHECK ("url" <> 'public.');
""",
    "identity": """CREATE TABLE "EventLog" (
    "id" BIGINT GENERATED BY DEFAULT AS IDENTITY (INCREMENT BY 10),
    "kind" TEXT NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "kindLength" INTEGER GENERATED ALWAYS AS (length("kind")) STORED,
    CONSTRAINT "EventLog_pkey" PRIMARY KEY ("id")
);
CREATE SEQUENCE "public"."invoice_number_seq" AS integer INCREMENT BY 5 START WITH 1000;
ALTER TABLE "Invoice" ADD COLUMN "number" INTEGER NOT NULL DEFAULT nextval('public.invoice_number_seq'::regclass);
ALTER SEQUENCE "public"."invoice_number_seq" OWNED BY "public"."Invoice"."number";
""",
    "add_then_drop_1": 'ALTER TABLE "Ticket" ADD COLUMN "legacyRef" TEXT;\n',
    "add_then_drop_2": 'ALTER TABLE "Ticket" DROP COLUMN "legacyRef";\n',
    "qualified_table": """CREATE TABLE "public"."TicketWatcher" (
    "ticketId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    CONSTRAINT "TicketWatcher_pkey" PRIMARY KEY ("ticketId", "userId")
);
CREATE INDEX "TicketWatcher_userId_idx" ON "public"."TicketWatcher"("userId");
ALTER TABLE "public"."TicketWatcher" ADD CONSTRAINT "TicketWatcher_userId_fkey" FOREIGN KEY ("userId") REFERENCES "public"."User"("id") ON DELETE CASCADE ON UPDATE CASCADE;
""",
    "unique": 'CREATE UNIQUE INDEX "ApiKey_title_key" ON "ApiKey"("title");\n',
    "enum_new": """CREATE TYPE "Channel_kind" AS ENUM ('EMAIL', 'CHAT');
ALTER TABLE "Channel" ADD COLUMN "kind" "Channel_kind" NOT NULL DEFAULT 'EMAIL';
""",
}

CONTRIB = {
    "citext": """CREATE EXTENSION IF NOT EXISTS "citext";
ALTER TABLE "Contact" ADD COLUMN "email" CITEXT;
CREATE UNIQUE INDEX "Contact_email_key" ON "Contact"("email");
""",
    "pg_trgm": """CREATE EXTENSION IF NOT EXISTS "pg_trgm";
CREATE INDEX "Article_title_trgm_idx" ON "Article" USING GIN ("title" gin_trgm_ops);
""",
    "pgcrypto": """CREATE EXTENSION IF NOT EXISTS "pgcrypto";
ALTER TABLE "ApiKey" ADD COLUMN "secret" TEXT NOT NULL DEFAULT encode(gen_random_bytes(24), 'hex');
""",
}

_STYLES = ("{d}{t}_{slug}", "{d}_{hm}_{slug}", "{d}{t} {words}")


def _names(count: int) -> list[str]:
    """`count` folder names, one day apart, in three timestamp styles, sorted in Prisma's order."""
    names = []
    for n in range(count):
        month, day = 1 + n // 28 % 12, 1 + n % 28
        year = 2023 + n // (28 * 12)
        d, t = f"{year}{month:02d}{day:02d}", f"{9 + n % 8:02d}{(n * 7) % 60:02d}00"
        style = _STYLES[n % 3] if n else _STYLES[0]
        names.append(style.format(d=d, t=t, hm=t[:4], slug=f"step_{n:03d}", words=f"step {n:03d}"))
    return sorted(names, key=collation_key)


def scripts(contrib: bool) -> list[tuple[str, str]]:
    """(slug, SQL) in the order they must run."""
    out: list[tuple[str, str]] = [("init", INIT)]
    entity_scripts = {name: _ddl_for_entity(i, name) for i, name in enumerate(ENTITIES)}
    # create every entity first (so specials can rely on them), then the other three steps interleaved
    for name in ENTITIES:
        out.append((f"create_{name.lower()}", entity_scripts[name][0]))
    specials = list(SPECIAL.items())
    extra = list(CONTRIB.items()) if contrib else []
    for k in range(1, 4):
        for j, name in enumerate(ENTITIES):
            out.append((f"{['', 'add', 'index', 'link'][k]}_{name.lower()}", entity_scripts[name][k]))
            if j % 3 == 2 and specials:
                out.append(specials.pop(0))
            if j % 13 == 12 and extra:
                out.append(extra.pop(0))
    out += specials + extra
    return out


def write_realistic_history(dest: Path, *, contrib: bool = False) -> Path:
    """Write the folder under `dest/migrations` and return it."""
    folder = Path(dest) / "migrations"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "migration_lock.toml").write_text('# Please do not edit this file manually\nprovider = "postgresql"\n')
    body = scripts(contrib)
    for name, (_slug, sql_text) in zip(_names(len(body)), body, strict=True):
        (folder / name).mkdir()
        (folder / name / "migration.sql").write_text(sql_text)
    return folder


def migration_names(folder: Path) -> list[str]:
    return sorted((p.name for p in folder.iterdir() if p.is_dir()), key=collation_key)
