package producer

import (
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Client is the asynq client a Producer enqueues with.
type Client struct {
	*asynq.Client
	pipe *redis.AutoPipeliner
}

// NewClient returns an asynq client on an autopipelined connection of rc
// (go-redis's AutoPipeline): the many concurrent enqueues of the expand
// tasks (EnqueueParallel per task, several tasks at once) then share round
// trips, where asynq, which has no batch enqueue, would make one each. It
// roughly triples the expansion rate (BENCHMARKS.md). Each enqueue still
// returns only once Redis has answered it. Close closes the client, not rc.
func NewClient(rc redis.UniversalClient) (*Client, error) {
	ap, err := rc.AutoPipeline()
	if err != nil {
		return nil, fmt.Errorf("producer: autopipeline: %w", err)
	}
	return &Client{Client: asynq.NewClientFromRedisClient(ap), pipe: ap}, nil
}

// Close stops the autopipeline under the client (asynq does not close a
// connection it was given).
func (c *Client) Close() error { return c.pipe.Close() }
