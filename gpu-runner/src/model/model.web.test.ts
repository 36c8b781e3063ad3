import { runModelTests } from "./model.case.js";

runModelTests({ backend: "web" });
