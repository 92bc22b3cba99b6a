// Package bench is the harness of `wxmass bench` (see BENCHMARKS.md): Run
// measures wxmass end to end against bare asynq and a plain goroutine pool,
// all sending to an in-process fake WeChat, and the expansion of a large
// audience into send tasks, and prints the figures as tables.
//
// It also holds the measuring instruments Run uses: a go-redis hook that
// counts round trips, an asynq connection option that installs it on
// asynq's own clients, the process's CPU time, and a sampler of the Redis
// server's INFO (memory, command counts, CPU).
//
// Like internal/reliability, it sits above every other package: it wires
// the producer, the worker, the rate limiter and the token cache as
// cmd/wxmass does, and imports the fake WeChat.
package bench
