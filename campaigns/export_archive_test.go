package campaigns

import "context"

// WriteArchiveOnly writes and verifies a finished run's archive file and
// records nothing, as an archive cut short after its write would leave it;
// it returns the file's key.
func (s *Store) WriteArchiveOnly(ctx context.Context, id string, run int) (string, error) {
	rec, err := s.Run(ctx, id, run)
	if err != nil {
		return "", err
	}
	key, _, _, err := s.writeArchive(ctx, id, run, rec)
	return key, err
}
