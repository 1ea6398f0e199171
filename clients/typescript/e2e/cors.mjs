// Opens the page at each origin in ORIGINS (comma-separated), which calls the API at
// OTICA_API_URL with OTICA_TOKEN, and prints per origin what the page could read, plus
// the console errors the browser logged (where it says why it blocked a call).
import { env, withPage } from "./browser.mjs";

const baseUrl = env("OTICA_API_URL");
const token = env("OTICA_TOKEN");
const origins = env("ORIGINS").split(",");

const outcomes = {};
for (const origin of origins) {
  outcomes[origin] = await withPage(async (page) => {
    const console_errors = [];
    page.on("console", (m) => m.type() === "error" && console_errors.push(m.text()));
    const fragment = new URLSearchParams({ api: baseUrl, token });
    await page.goto(`${origin}/#${fragment}`);
    const result = page.locator("#result[data-done]");
    await result.waitFor();
    return { ...JSON.parse(await result.innerText()), console_errors };
  });
}

console.log(JSON.stringify(outcomes));
