// Every operation of the API through the generated client, run against a live server:
//
//   OTICA_API_URL=http://127.0.0.1:8000 OTICA_TOKEN=<token from `cargo run -- dev`> \
//     npm run example
//
// It checks what it gets back and exits non-zero on the first surprise, so the Rust tests
// can run it as a contract test. A field renamed in openapi.yaml breaks its type check.
import assert from "node:assert/strict";

import { createOticaClient, type Problem, type Staff } from "./src/index.js";

const baseUrl = required("OTICA_API_URL");
const token = required("OTICA_TOKEN");
const api = createOticaClient(baseUrl, async () => token);

// A suffix keeps reruns against the same `dev` database from colliding on the email.
const tag = Date.now().toString(36);
const email = `ana.${tag}@example.com`;

const created = await api.POST("/api/v1/staff", {
  body: { full_name: "Ana Example", email, role: "MANAGER", department: "Lab" },
});
assert.equal(created.response.status, 201, problemText(created.error));
const ana: Staff = must(created.data);
assert.equal(ana.email, email);
assert.equal(ana.is_active, true);
assert.ok(created.response.headers.get("location")?.endsWith(`/api/v1/staff/${ana.id}`));

const listed = await api.GET("/api/v1/staff", {
  params: { query: { q: tag, limit: 10, offset: 0 } },
});
assert.deepEqual(must(listed.data).map((m) => m.id), [ana.id]);

const stats = must((await api.GET("/api/v1/staff/stats")).data);
assert.ok(stats.total_users >= 1 && stats.managers >= 1);

const read = await api.GET("/api/v1/staff/{id}", { params: { path: { id: ana.id } } });
assert.equal(must(read.data).full_name, "Ana Example");

const updated = await api.PATCH("/api/v1/staff/{id}", {
  params: { path: { id: ana.id } },
  body: { role: "ADMIN", department: null },
});
assert.equal(must(updated.data).role, "ADMIN");
assert.equal(must(updated.data).department, null);

// A second member with the same email, in other letters' case: 409, naming the field.
const duplicate = await api.POST("/api/v1/staff", {
  body: { full_name: "Ana Again", email: email.toUpperCase(), role: "STAFF" },
});
assert.equal(duplicate.response.status, 409);
const conflict: Problem = must(duplicate.error);
assert.equal(conflict.status, 409);
assert.deepEqual(conflict.errors?.map((e) => e.field), ["email"]);

// An email without an @: 422, with every failing field listed.
const invalid = await api.POST("/api/v1/staff", {
  body: { full_name: "Bruno Example", email: "not-an-email", role: "STAFF" },
});
assert.equal(invalid.response.status, 422);
assert.equal(invalid.response.headers.get("content-type"), "application/problem+json");
const unprocessable: Problem = must(invalid.error);
assert.ok(unprocessable.type && unprocessable.title && unprocessable.detail);
assert.deepEqual(unprocessable.errors?.map((e) => e.field), ["email"]);

const deleted = await api.DELETE("/api/v1/staff/{id}", { params: { path: { id: ana.id } } });
assert.equal(deleted.response.status, 204);
const gone = await api.GET("/api/v1/staff/{id}", { params: { path: { id: ana.id } } });
assert.equal(gone.response.status, 404);
assert.equal(must(gone.error).status, 404);

console.log(
  JSON.stringify({
    ok: true,
    created: ana.id,
    conflict: conflict.errors,
    unprocessable: unprocessable.errors,
  }),
);

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

function must<T>(value: T | undefined): T {
  assert.ok(value !== undefined, "the API answered without the expected body");
  return value;
}

function problemText(problem: Problem | undefined): string | undefined {
  return problem && `${problem.status} ${problem.title}: ${problem.detail}`;
}
