-- CreateTable
CREATE TABLE "report_exports" (
    "id" SERIAL NOT NULL,
    "client_id" UUID,
    "format" VARCHAR(20) NOT NULL,
    "created_at" TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "report_exports_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "report_exports_client_id_idx" ON "report_exports"("client_id");

-- AddForeignKey
ALTER TABLE "report_exports" ADD CONSTRAINT "report_exports_client_id_fkey" FOREIGN KEY ("client_id") REFERENCES "clients"("id") ON DELETE SET NULL ON UPDATE CASCADE;
