# shellcheck shell=bash
# One wrk Lua script per request shape, written into "$work" (set by the caller):
#   lua NAME METHOD KEY BODY   prints the script's path
# KEY, when not empty, is sent as `Authorization: Bearer KEY`; BODY, when not empty, as a JSON
# body.
lua() {
    local f="$work/$1.lua"
    {
        echo "wrk.method = \"$2\""
        [ -n "$3" ] && echo "wrk.headers[\"Authorization\"] = \"Bearer $3\""
        if [ -n "$4" ]; then
            echo "wrk.headers[\"Content-Type\"] = \"application/json\""
            echo "wrk.body = '$4'"
        fi
    } >"$f"
    echo "$f"
}
