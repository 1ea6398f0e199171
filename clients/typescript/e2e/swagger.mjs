// In Swagger UI at OTICA_API_URL/docs: authorize with OTICA_TOKEN, run listStaff with
// "Try it out" and "Execute", save a screenshot to SCREENSHOT, and print what the UI shows.
import { env, withPage } from "./browser.mjs";

const baseUrl = env("OTICA_API_URL");
const token = env("OTICA_TOKEN");
const screenshot = env("SCREENSHOT");

const shown = await withPage(async (page) => {
  await page.goto(`${baseUrl}/docs`);

  await page.locator("button.authorize").first().click();
  await page.locator(".auth-container input").fill(token);
  await page.locator(".auth-btn-wrapper button.authorize").click();
  await page.locator(".auth-btn-wrapper button.btn-done").click();

  const operation = page.locator("#operations-Staff-listStaff");
  await operation.locator(".opblock-summary").click();
  await operation.locator("button.try-out__btn").click();
  await operation.locator("button.execute").click();

  // Swagger UI fills the live response table once the answer arrives; waiting for it is
  // bounded by the page's default timeout.
  const status = operation.locator(".live-responses-table .response .response-col_status");
  await status.first().waitFor();
  const body = operation.locator(".live-responses-table .response-col_description pre");
  await body.first().waitFor();
  // One screen from the curl line (with its bearer header) down to the answer's body.
  await page.setViewportSize({ width: 1280, height: 1000 });
  await operation.locator(".responses-inner").first().evaluate((e) => e.scrollIntoView());
  await page.screenshot({ path: screenshot });
  return {
    status: (await status.first().innerText()).trim(),
    body: await body.first().innerText(),
  };
});

console.log(JSON.stringify(shown));
