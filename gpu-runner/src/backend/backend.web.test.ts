import { runBackendTests } from "./backend.case.js";

runBackendTests({ name: "web" });
