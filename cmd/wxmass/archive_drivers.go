package main

// The archive's bucket drivers (see campaigns.OpenArchive and the
// --archive-url flag): a local directory, S3, GCS and Azure Blob Storage.
import (
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
)
