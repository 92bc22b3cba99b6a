// Package monitoring holds what operators watch wxmass through: the zap
// logger set up once by main, log fields that never carry secrets or raw
// openids, and (in later parts) Prometheus metrics, health checks and the
// asynqmon mount.
package monitoring
