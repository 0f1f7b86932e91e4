-- The skynet service meshnet calls: registered with cluster.register as "skecho".
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local notes = {}
local command = {}

function command.hello(name) return "hello " .. name .. ", from skynet" end
function command.add(a, b) return a + b end
function command.pair(a, b) return a, b end -- two values: a tuple in Python
function command.echo(value) return value end
function command.fail(why) error(why) end
function command.note(text) notes[#notes + 1] = text end
function command.notes() return notes end

skynet.start(function()
	skynet.dispatch("lua", function(session, _, cmd, ...)
		local f = assert(command[cmd], cmd)
		if session == 0 then
			f(...)
		else
			skynet.retpack(f(...))
		end
	end)
	cluster.register("skecho")
end)
