-- pgferry bus, migration 3: a read-only function for operations (dashboard,
-- /metrics, CLI): the channels of the member registry, by hash (the registry
-- never stores channel names), with their members and how many still hold a
-- lease. STABLE, writes nothing (safe on a replica), caller's rights: the
-- registry is readable by its owner only, so only the owner, or a role the
-- owner grants EXECUTE and SELECT on _pgferry_bus_member, can call it. The
-- bus role (pgferry_bus) cannot: members of other roles stay hidden from it.
CREATE FUNCTION @schema@._pgferry_bus_channel_stats()
RETURNS TABLE (channel_hash text, members bigint, live bigint, oldest_joined_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT encode(m.channel_hash, 'hex'), count(*), count(*) FILTER (WHERE m.lease_until > now()),
         min(m.joined_at)
    FROM @schema@._pgferry_bus_member m
   GROUP BY m.channel_hash
   ORDER BY 1;
$$;
REVOKE ALL ON FUNCTION @schema@._pgferry_bus_channel_stats() FROM PUBLIC;
