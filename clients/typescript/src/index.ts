// The typed client: openapi-fetch over the types openapi-typescript generates from the
// committed contract. Nothing here describes a request or a response by hand.
import createClient from "openapi-fetch";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };

/** A member of the shop's team, as the API answers it. */
export type Staff = components["schemas"]["Staff"];

/** Every error answer (`application/problem+json`, RFC 9457). */
export type Problem = components["schemas"]["Problem"];

/**
 * A client for `baseUrl` (e.g. `http://127.0.0.1:8000`). `getToken` is asked before every
 * request, because Clerk session tokens live for about a minute: pass Clerk's
 * `getToken` (from `useAuth()`), which returns a fresh one when needed.
 */
export function createOticaClient(baseUrl: string, getToken: () => Promise<string | null>) {
  const client = createClient<paths>({ baseUrl });
  client.use({
    async onRequest({ request }) {
      const token = await getToken();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  return client;
}
