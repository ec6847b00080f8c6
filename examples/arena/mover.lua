-- mover.lua: ambient traffic, the bulk of the arena. Fast form: the fields
-- update reads come in as arguments and the ones it writes go back as return
-- values, so no `self` table is built per call (the cheapest field access).
local SIZE = 1000.0 -- the arena is SIZE x SIZE and wraps around (scene.txt)

return {
  fields = { x = 0.0, y = 0.0, vx = 0.0, vy = 0.0 },
  tags = { "mover" },
  reads = { "x", "y", "vx", "vy" },
  writes = { "x", "y" },
  update = function(id, dt, x, y, vx, vy)
    x = x + vx * dt
    y = y + vy * dt
    if x < 0.0 then x = x + SIZE elseif x >= SIZE then x = x - SIZE end
    if y < 0.0 then y = y + SIZE elseif y >= SIZE then y = y - SIZE end
    return x, y
  end,
}
