-- The agents' board page by hand: what `bench/src/queue_page.rs`'s BOARD
-- query fetches (50 tickets of one queue in importance order, with requester,
-- assignee, queue and team, comment count, latest comment and its author, SLA
-- state; the queue's statistics and total), as few statements as the data
-- allows: one query with lateral joins and two counts. `pgbench -D queue=<id>`
-- names the queue. The service's throughput is reported as a ratio to this.
SELECT t.id, t.number, t.kind, t.title, t.status, t.priority,
       r.display_name AS requester, a.display_name AS assignee,
       q.name AS queue, tm.name AS team,
       c.comment_count, lc.body AS latest_body, lu.display_name AS latest_author,
       COALESCE(t.responded_at, t.sla_stopped_at, now()) > t.response_due_at AS response_breached,
       COALESCE(t.sla_stopped_at, t.paused_since, now()) > t.resolution_due_at AS resolution_breached,
       CASE WHEN t.sla_stopped_at IS NULL AND t.paused_since IS NULL
            THEN extract(epoch FROM t.resolution_due_at - now())::bigint END AS remaining_seconds
FROM tickets t
JOIN users r ON r.id = t.requester_id
LEFT JOIN users a ON a.id = t.assignee_id
JOIN queues q ON q.id = t.queue_id
JOIN teams tm ON tm.id = q.team_id
LEFT JOIN LATERAL (
  SELECT count(*) AS comment_count FROM comments
  WHERE ticket_id = t.id AND visibility IN ('PUBLIC', 'INTERNAL')) c ON true
LEFT JOIN LATERAL (
  SELECT body, author_id FROM comments
  WHERE ticket_id = t.id AND visibility IN ('PUBLIC', 'INTERNAL')
  ORDER BY id DESC LIMIT 1) lc ON true
LEFT JOIN users lu ON lu.id = lc.author_id
WHERE t.queue_id = :queue
ORDER BY t.priority_rank, t.queue_due_at, t.created_at, t.id
LIMIT 51;
SELECT count(*) FROM tickets WHERE queue_id = :queue;
SELECT count(*) AS open,
       count(*) FILTER (WHERE assignee_id IS NULL) AS unassigned,
       count(*) FILTER (WHERE COALESCE(responded_at, sla_stopped_at, now()) > response_due_at
                           OR COALESCE(sla_stopped_at, paused_since, now()) > resolution_due_at) AS breached
FROM tickets
WHERE queue_id = :queue AND status IN ('NEW', 'AWAITING_APPROVAL', 'IN_PROGRESS', 'PENDING');
