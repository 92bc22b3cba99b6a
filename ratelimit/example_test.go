package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/ratelimit"
)

// A send handler takes a token before each call to WeChat, and feeds
// WeChat's quota errcodes back to the shared bucket. The example needs a
// Redis, so it is compiled but not run.
func Example() {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer c.Close()
	l, err := ratelimit.New(rdb.New(c, ""), ratelimit.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	ctx := context.Background()
	key := "wx1234567890abcdef:message/template/send"
	lim := ratelimit.Limit{Rate: 500, Burst: 50}

	err = l.Wait(ctx, key, lim, ratelimit.PriorityLow)
	var throttled *ratelimit.Error
	var paused *ratelimit.PausedError
	switch {
	case errors.As(err, &throttled):
		// Give the task back; asynq's RetryDelayFunc reads RetryAfter.
		fmt.Println("retry in", throttled.RetryAfter)
		return
	case errors.As(err, &paused):
		fmt.Println("paused until", paused.Until)
		return
	case err != nil:
		fmt.Println(err)
		return
	}

	// ... send; then, depending on WeChat's answer:
	errcode := 45011
	switch errcode {
	case 45011: // per-minute quota: slow every process down
		err = l.Slowdown(ctx, key)
	case 45009: // daily quota: stop every process until the reset
		err = l.Pause(ctx, key, time.Now().Add(time.Hour))
	}
	if err != nil {
		fmt.Println(err)
	}
}
