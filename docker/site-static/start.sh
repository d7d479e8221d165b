# Entry point of berth/site-static, run by busybox's shell inside the site container.
# On a fresh data volume it writes a first page naming the site; then it serves /srv/www.
# BERTH_SITE_NAME is set by Berth from the site name, which the API restricts to [a-z0-9-]; it is
# still passed as a printf argument, never as part of the format or of a command.
set -eu
if [ ! -e /srv/www/index.html ]; then
    name="${BERTH_SITE_NAME:-site}"
    printf '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>%s</title></head>\n<body><h1>%s</h1><p>This site is hosted by Berth. Upload your pages to replace this one.</p></body></html>\n' "$name" "$name" >/srv/www/index.html
fi
exec /bin/busybox httpd -f -v -p 8080 -h /srv/www
