import { createApp } from "./app.js";

/** The worker entry: the Hono app's fetch handler. */
const app = createApp();
export default app;
