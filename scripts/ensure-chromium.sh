#!/usr/bin/env bash
# ensure-chromium.sh: make sure Debian's chromium and a CJK font are
# installed, for the browser tests of the report page, the login page,
# /monitoring and the console (cmd/wxmass, TestAllThroughTheAPI,
# TestBrowserCSRF, TestConsoleWalkthrough: its Chinese screenshots need a
# font with Chinese glyphs, fonts-wqy-zenhei, when fc-list :lang=zh finds
# none). It installs what is missing with apt-get (as root, or with sudo)
# and says nothing when both are there. Without them the browser tests fail
# and say why.
set -euo pipefail

need=()
if ! command -v chromium >/dev/null 2>&1; then
	need+=(chromium)
fi
if ! command -v fc-list >/dev/null 2>&1 || [ -z "$(fc-list :lang=zh 2>/dev/null)" ]; then
	need+=(fonts-wqy-zenhei fontconfig)
fi
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "ensure-chromium: ${need[*]} missing and this user cannot install them (apt-get install ${need[*]})" >&2
		exit 0
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-chromium: ${need[*]} missing and there is no apt-get to install them" >&2
	exit 0
fi
echo "ensure-chromium: installing ${need[*]} for the browser tests" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
