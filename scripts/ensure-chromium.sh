#!/usr/bin/env bash
# ensure-chromium.sh: make sure Debian's chromium is installed, for the
# browser tests of the report page, the login page and /monitoring (cmd/wxmass,
# TestAllThroughTheAPI and TestBrowserCSRF).
# It installs the package with apt-get when it is missing (as root, or with
# sudo). Without it the browser test fails and says why.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "ensure-chromium: chromium is missing and this user cannot install it (apt-get install chromium)" >&2
		exit 0
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-chromium: chromium is missing and there is no apt-get to install it" >&2
	exit 0
fi
echo "ensure-chromium: installing Debian's chromium for the browser test" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
