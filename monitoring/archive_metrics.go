package monitoring

import "github.com/prometheus/client_golang/prometheus"

// archiveMetrics are the archiver's metrics.
type archiveMetrics struct {
	runs    *prometheus.CounterVec
	errors  *prometheus.CounterVec
	bytes   prometheus.Counter
	records prometheus.Counter
}

func newArchiveMetrics() *archiveMetrics {
	m := &archiveMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_archived_runs_total",
			Help: "Finished runs the archiver acted on, by action: archived (per-recipient data written to the archive and removed from Redis), expired (archive removed by retention), msgids (msgid index entries removed at the end of the receipt window).",
		}, []string{"action"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_archive_errors_total",
			Help: "Archiver steps that failed (and are tried again on its next pass), by action (archive, expire, msgids, list).",
		}, []string{"action"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wxmass_archive_bytes_written_total",
			Help: "Compressed bytes of archive files written.",
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wxmass_archive_records_written_total",
			Help: "Per-recipient records written to archive files.",
		}),
	}
	for _, a := range []string{"archived", "expired", "msgids"} {
		m.runs.WithLabelValues(a)
	}
	for _, a := range []string{"archive", "expire", "msgids", "list"} {
		m.errors.WithLabelValues(a)
	}
	return m
}

func (m *archiveMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.runs, m.errors, m.bytes, m.records}
}

// Archived counts a run the archiver acted on (see
// wxmass_archived_runs_total).
func (m *Metrics) Archived(action string) {
	if m == nil {
		return
	}
	m.archive.runs.WithLabelValues(action).Inc()
}

// ArchiveWritten counts an archive file of records records and bytes
// compressed bytes.
func (m *Metrics) ArchiveWritten(records, bytes int64) {
	if m == nil {
		return
	}
	m.archive.records.Add(float64(records))
	m.archive.bytes.Add(float64(bytes))
}

// ArchiveError counts a failed step of the archiver.
func (m *Metrics) ArchiveError(action string) {
	if m == nil {
		return
	}
	m.archive.errors.WithLabelValues(action).Inc()
}
