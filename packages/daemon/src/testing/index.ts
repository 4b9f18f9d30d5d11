// @fastsuspend/daemon/testing: helpers for tests of this package and of its clients (the CLI).
export { parsePrometheusText, PromParseError, type PromFamily, type PromSample, type MetricType } from "./prom-text";
