// Package check validates deploy/: the Dockerfile, docker-compose.yml, the
// Kubernetes manifests, prometheus.yml and its rules, the Grafana dashboard
// and redis.conf, with the libraries and programs that read them for real
// (compose-go, the Kubernetes API types, BuildKit's Dockerfile parser,
// Prometheus's config loader and PromQL parser, redis-server) and against
// wxmass itself: its --help (the environment variables), its accounts-file
// loader, its metrics and its processes. It is a module of its own so that
// wxmass's module gets none of these dependencies.
//
// Run it with `make deploy-check` (cd deploy/check && go test ./...).
package check
