package producer

import "context"

// RunOnce handles the fires due now, as one tick of Run does, so that
// tests drive the scheduler with a fake clock instead of waiting.
func (s *Scheduler) RunOnce(ctx context.Context) error { return s.tick(ctx) }

// AdmitShare is admitShare, for the unit test of the share computation.
var AdmitShare = admitShare
