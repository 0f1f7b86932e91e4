-- The skynet node "sknode": serves skecho on its cluster port, then calls meshnode's pyecho
-- every way skynet's cluster API offers and prints what came back.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local function shown(v)
	if type(v) ~= "table" then return tostring(v) end
	local items = {}
	for i, item in ipairs(v) do items[i] = shown(item) end
	return "{" .. table.concat(items, ", ") .. "}"
end

local function try(what, f, ...)
	local results = table.pack(pcall(f, ...))
	local out = {}
	for i = 2, results.n do out[#out + 1] = shown(results[i]) end
	skynet.error(what, results[1] and "->" or "failed:", table.concat(out, ", "))
	return table.unpack(results, 1, results.n)
end

skynet.start(function()
	skynet.newservice("skecho")
	cluster.open "sknode"
	while not pcall(cluster.call, "meshnode", "@pyecho", "hello", "skynet") do
		skynet.error("waiting for meshnode")
		skynet.sleep(100)
	end
	try("call @pyecho hello", cluster.call, "meshnode", "@pyecho", "hello", "skynet")
	try("call @pyecho add 2 40", cluster.call, "meshnode", "@pyecho", "add", 2, 40)
	try("call @pyecho echo", cluster.call, "meshnode", "@pyecho", "echo", { 1, 2, { "three" } })
	cluster.send("meshnode", "@pyecho", "note", "sent from skynet")
	try("call @pyecho notes_so_far", cluster.call, "meshnode", "@pyecho", "notes_so_far")
	local _, address = try("query pyecho", cluster.query, "meshnode", "pyecho")
	try("call it by address", cluster.call, "meshnode", address, "hello", "by address")
	try("call @pyecho echo 100000 bytes", function()
		return #cluster.call("meshnode", "@pyecho", "echo", string.rep("x", 100000))
	end)
	try("call @pyecho fail", cluster.call, "meshnode", "@pyecho", "fail", "on purpose")
	try("call @nobody", cluster.call, "meshnode", "@nobody", "hello")
end)
