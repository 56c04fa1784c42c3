// A small client of export-host, type-checked against the types generated
// from its OpenAPI document (generated/api.d.ts, made by openapi-typescript).
// If the API changes shape, this stops compiling.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/api";

type ExportRecord = components["schemas"]["ExportRecord"];

export async function exportToCsv(baseUrl: string, token: string): Promise<string> {
  const api = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${token}` },
  });
  const created = await api.POST("/v1/exports", {
    params: { query: { wait: 30 } },
    body: {
      loader: "csv",
      format: "jsonl",
      selector: { path: "people.csv" },
      options: { compression: "gzip" },
    },
  });
  if (created.error !== undefined || created.data === undefined) {
    throw new Error(`create failed: ${JSON.stringify(created.error)}`);
  }
  const record: ExportRecord = created.data;
  const shown = await api.GET("/v1/exports/{id}", { params: { path: { id: record.id } } });
  const status: components["schemas"]["Status"] | undefined = shown.data?.status;
  const page = await api.GET("/v1/exports", { params: { query: { status: "completed" } } });
  const ids: string[] = (page.data?.items ?? []).map((item) => item.id);
  const link = await api.POST("/v1/exports/{id}/link", {
    params: { path: { id: record.id } },
    body: { ttl: 600 },
  });
  const url: string | undefined = link.data?.url;
  await api.DELETE("/v1/exports/{id}", { params: { path: { id: record.id } } });
  return `${status} ${ids.length} ${url ?? ""}`;
}
