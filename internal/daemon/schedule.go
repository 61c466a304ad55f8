package daemon

import (
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"
)

// startSchedule runs the cron schedule: each tick, after a random jitter, requests a
// sync. The returned function stops it.
func (d *Daemon) startSchedule() (stop func()) {
	if d.sched == nil {
		return func() {}
	}
	c := cron.New(cron.WithLogger(cron.DiscardLogger))
	c.Schedule(d.sched, cron.FuncJob(func() {
		// A jittered tick that fires after Run ended is dropped by request.
		time.AfterFunc(d.jitter(time.Now()), func() { d.request("schedule", false, nil) })
	}))
	c.Start()
	d.log.Info("schedule started", "schedule", d.cfg.Schedule, "next", d.sched.Next(time.Now()).Format(time.RFC3339), "max_jitter_ms", d.maxJitter(time.Now()).Milliseconds())
	return func() { <-c.Stop().Done() }
}

// period is the time between the schedule's next two runs after now.
func (d *Daemon) period(now time.Time) time.Duration {
	if d.sched == nil {
		return 0
	}
	next := d.sched.Next(now)
	return d.sched.Next(next).Sub(next)
}

// maxJitter is Config.Jitter capped at a tenth of the schedule's period.
func (d *Daemon) maxJitter(now time.Time) time.Duration {
	return min(d.cfg.Jitter, d.period(now)/10)
}

// jitter is a random delay below maxJitter.
func (d *Daemon) jitter(now time.Time) time.Duration {
	m := d.maxJitter(now)
	if m <= 0 {
		return 0
	}
	return rand.N(m)
}
