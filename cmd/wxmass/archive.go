package main

import (
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/worker"
)

// Flags of the archive of finished runs (worker, serve, all, demo).
const (
	flagArchiveURL    = "archive-url"
	flagArchiveAfter  = "archive-after"
	flagRetention     = "retention"
	flagReceiptWindow = "receipt-window"
)

// archiveDirDefault is the directory, under the working directory, of the
// archive when --archive-url is not set.
const archiveDirDefault = "wxmass-archive"

func archiveFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagArchiveURL, Usage: "where finished runs' per-recipient data is archived: file:///dir (created when needed), s3://bucket?region=..., gs://bucket or azblob://container; empty: the directory " + archiveDirDefault + " under the working directory", Sources: sources(flagArchiveURL)},
		&cli.DurationFlag{Name: flagArchiveAfter, Value: worker.ArchiveAfterDefault, Usage: "how long after its end a finished run's per-recipient data moves from Redis to the archive (at least --" + flagDedupeWindow + ")", Sources: sources(flagArchiveAfter)},
		&cli.DurationFlag{Name: flagRetention, Value: worker.RetentionDefault, Usage: "how long after its end a run's archive is kept; then only its summary is (the export answers 410)", Sources: sources(flagRetention)},
		&cli.DurationFlag{Name: flagReceiptWindow, Value: worker.ReceiptWindowDefault, Usage: "how long after its end a run's msgid index entries are kept for delivery receipts, when that is shorter than --" + flagArchiveAfter + " (archiving removes them)", Sources: sources(flagReceiptWindow)},
	}
}

// archiveURL is --archive-url, or a file URL of archiveDirDefault under
// the working directory.
func archiveURL(cmd *cli.Command) (string, error) {
	if u := cmd.String(flagArchiveURL); u != "" {
		return u, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(wd, archiveDirDefault)), RawQuery: "create_dir=1&no_tmp_dir=1"}
	return u.String(), nil
}

// openArchive opens the archive of the flags and checks the archive
// durations.
func openArchive(cmd *cli.Command) (*campaigns.Archive, error) {
	if after, min := cmd.Duration(flagArchiveAfter), cmd.Duration(flagDedupeWindow); after < min {
		return nil, usagef("--%s: %s: want at least --%s (%s)", flagArchiveAfter, after, flagDedupeWindow, min)
	}
	if d := cmd.Duration(flagRetention); d < time.Hour {
		return nil, usagef("--%s: %s: want at least 1h", flagRetention, d)
	} else if after := cmd.Duration(flagArchiveAfter); d < after {
		return nil, usagef("--%s: %s: want at least --%s (%s)", flagRetention, d, flagArchiveAfter, after)
	}
	u, err := archiveURL(cmd)
	if err != nil {
		return nil, err
	}
	a, err := campaigns.OpenArchive(u)
	if err != nil {
		return nil, usagef("--%s: %v", flagArchiveURL, err)
	}
	return a, nil
}
