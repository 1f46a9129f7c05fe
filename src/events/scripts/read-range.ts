/**
 * Reads one page of a bottle's stream as a single JSON text, so the reader
 * parses one bulk string per page instead of nine per entry.
 *
 * Input:
 *   KEYS[1] events stream     cb:bottle:{<identity>}:events
 *
 *   ARGV[1] start id, as XRANGE takes it ('<seq>-0' or '(<id>' for after an id)
 *   ARGV[2] end id, as XRANGE takes it ('<seq>-0' or '+')
 *   ARGV[3] N, most entries to read
 *   ARGV[4] row marker: an integer the reader picked at random for this read
 *
 * Output:
 *   { count, lastId, rows }
 *     count   entries in the page (0 to N); a page of N may have more after it
 *     lastId  id of the page's last entry ('' when count is 0)
 *     rows    '[[marker,"<id>","<type>","<at>","<v>",<data>],...]', one row per entry in stream order,
 *             or '' when some entry is not as the append script writes it (other fields or order,
 *             or a quote or backslash in type, at or v): read those entries with XRANGE instead.
 *
 * `data` is copied in as stored, without re-encoding: append stored it as JSON text.
 * The reader must not trust that, so the rows carry the marker: data that is not
 * exactly one JSON value either breaks the parse or shifts some row, and a shifted
 * row cannot start with a marker its writer never saw. The reader checks that the
 * text holds exactly `count` rows of six values, each starting with the marker,
 * before it believes any of them.
 */
export const READ_RANGE_SCRIPT = `
local entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
local count = #entries
if count == 0 then
  return { 0, '', '' }
end
local lastId = entries[count][1]

local open = '[' .. ARGV[4] .. ',"'
local parts = { '[' }
local n = 1
local envelope = {}
for i = 1, count do
  local entry = entries[i]
  local f = entry[2]
  if #f ~= 8 or f[1] ~= 'type' or f[3] ~= 'at' or f[5] ~= 'v' or f[7] ~= 'data' then
    return { count, lastId, '' }
  end
  parts[n + 1] = open
  parts[n + 2] = entry[1]
  parts[n + 3] = '","'
  parts[n + 4] = f[2]
  parts[n + 5] = '","'
  parts[n + 6] = f[4]
  parts[n + 7] = '","'
  parts[n + 8] = f[6]
  parts[n + 9] = '",'
  parts[n + 10] = f[8]
  parts[n + 11] = '],'
  n = n + 11
  envelope[3 * i - 2] = f[2]
  envelope[3 * i - 1] = f[4]
  envelope[3 * i] = f[6]
end

-- Type, at and v go between quotes unescaped: checked all at once, as one string.
local plain = table.concat(envelope)
if string.find(plain, '"', 1, true) or string.find(plain, '\\\\', 1, true) then
  return { count, lastId, '' }
end
parts[n] = ']]'
return { count, lastId, table.concat(parts) }
`;
