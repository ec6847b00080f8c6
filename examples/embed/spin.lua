-- spin.lua: every entity turns at its own speed.
return {
  fields = { angle = 0.0, speed = 1.0 },
  update = function(self, dt)
    self.angle = self.angle + self.speed * dt
  end,
}
