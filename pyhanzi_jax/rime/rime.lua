-- rime.lua for a librime-lua older than 2023, which finds filters only as globals of this file:
-- merge this line into <user dir>/rime.lua and name the filter lua_filter@pyhanzi_filter.
pyhanzi_filter = require("pyhanzi")
