#include "kernel/config_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "kernel/config.hpp"
#include "runtime/spawn_request.hpp"
#include "util/unique_fd.hpp"

namespace agentos {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr uint64_t kDefaultCpuPeriodUs = 100'000;

// What went wrong where; turned into "<file>:<line>:<col>: <what>" at the top.
struct Issue {
  toml::source_region where;
  std::string what;
};
template <class T>
using Checked = std::expected<T, Issue>;

std::unexpected<Issue> issue(const toml::source_region& where, std::string what) {
  return std::unexpected(Issue{where, std::move(what)});
}

struct Ctx {
  std::string source;  // the file's name as given, for messages
  fs::path base_dir;   // where relative paths start
  bool check_files = false;
};

std::unexpected<Error> to_error(const Ctx& ctx, const Issue& i) {
  return make_error(
      fmt::format("{}:{}:{}: {}", ctx.source, i.where.begin.line, i.where.begin.column, i.what));
}

std::string absolute_from(const Ctx& ctx, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  return (ctx.base_dir / path).lexically_normal().string();
}

using Entry = std::pair<const toml::key*, const toml::node*>;

// toml::table is ordered by key; errors read better in the order of the file.
std::vector<Entry> in_file_order(const toml::table& t) {
  std::vector<Entry> entries;
  for (auto&& [k, n] : t) entries.emplace_back(&k, &n);
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    const auto& pa = a.first->source().begin;
    const auto& pb = b.first->source().begin;
    return std::tie(pa.line, pa.column) < std::tie(pb.line, pb.column);
  });
  return entries;
}

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date or time";
  }
}

// ---- typed values of [kernel] --------------------------------------------

Checked<std::string> string_of(const toml::node& n) {
  if (const auto* s = n.as_string()) return s->get();
  return issue(n.source(), fmt::format("expected a string, not {}", type_name(n)));
}

Checked<std::string> non_empty_string_of(const toml::node& n) {
  auto s = AOS_TRY(string_of(n));
  if (s.empty()) return issue(n.source(), "must not be empty");
  return s;
}

Checked<std::string> path_of(const toml::node& n, const Ctx& ctx) {
  return absolute_from(ctx, AOS_TRY(non_empty_string_of(n)));
}

Checked<std::string> choice_of(const toml::node& n,
                               std::initializer_list<std::string_view> choices) {
  auto s = AOS_TRY(string_of(n));
  if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  return issue(n.source(), fmt::format("'{}' is not one of: {}", s, fmt::join(choices, ", ")));
}

Checked<bool> bool_of(const toml::node& n) {
  if (const auto* b = n.as_boolean()) return b->get();
  return issue(n.source(), fmt::format("expected true or false, not {}", type_name(n)));
}

Checked<int64_t> int_of(const toml::node& n, int64_t lo, int64_t hi) {
  const auto* i = n.as_integer();
  if (!i) return issue(n.source(), fmt::format("expected an integer, not {}", type_name(n)));
  if (i->get() < lo || i->get() > hi)
    return issue(n.source(), fmt::format("must be between {} and {}", lo, hi));
  return i->get();
}

// An integer or a float, finite, in [lo, hi].
Checked<double> number_of(const toml::node& n, double lo, double hi) {
  double d = 0;
  if (const auto* i = n.as_integer())
    d = static_cast<double>(i->get());
  else if (const auto* f = n.as_floating_point())
    d = f->get();
  else
    return issue(n.source(), fmt::format("expected a number, not {}", type_name(n)));
  if (!std::isfinite(d) || d < lo || d > hi)
    return issue(n.source(), fmt::format("must be between {} and {}", lo, hi));
  return d;
}

// An integer count of bytes or a size string ("10M").
Checked<uint64_t> bytes_of(const toml::node& n, uint64_t lo, uint64_t hi) {
  uint64_t v = 0;
  if (const auto* s = n.as_string()) {
    auto parsed = parse_byte_size(s->get());
    if (!parsed) return issue(n.source(), parsed.error().message());
    v = *parsed;
  } else if (const auto* i = n.as_integer(); i && i->get() >= 0) {
    v = static_cast<uint64_t>(i->get());
  } else {
    return issue(n.source(), fmt::format("expected a byte count or a size such as \"10M\", not {}",
                                         type_name(n)));
  }
  if (v < lo || v > hi)
    return issue(n.source(), fmt::format("{} bytes is not between {} and {}", v, lo, hi));
  return v;
}

// ---- [kernel] --------------------------------------------------------------

using KernelSetter = Checked<void> (*)(const toml::node&, const Ctx&, KernelSettings&);
struct KernelKey {
  std::string_view name;
  KernelSetter set;
};

// One row per key: the name the file uses and how its value is checked.
// Ranges are the flags' (config.hpp), so a file cannot do what a flag may not.
const KernelKey kKernelKeys[] = {
    {"socket",
     [](const toml::node& n, const Ctx& c, KernelSettings& s) -> Checked<void> {
       s.socket = AOS_TRY(path_of(n, c));
       return {};
     }},
    {"log_level",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.log_level =
           AOS_TRY(choice_of(n, {"trace", "debug", "info", "warn", "error", "critical", "off"}));
       return {};
     }},
    {"state_dir",
     [](const toml::node& n, const Ctx& c, KernelSettings& s) -> Checked<void> {
       s.state_dir = AOS_TRY(path_of(n, c));
       return {};
     }},
    {"runtime_dir",
     [](const toml::node& n, const Ctx& c, KernelSettings& s) -> Checked<void> {
       s.runtime_dir = AOS_TRY(path_of(n, c));
       return {};
     }},
    {"max_connections",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.max_connections = static_cast<size_t>(AOS_TRY(int_of(n, 1, kMaxConnectionsMax)));
       return {};
     }},
    {"max_output_bytes",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.max_output_bytes =
           static_cast<size_t>(AOS_TRY(bytes_of(n, kOutputBytesMin, kOutputBytesMax)));
       return {};
     }},
    {"sandbox",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       if (s.sandbox) return issue(n.source(), "give either sandbox or no_sandbox, not both");
       s.sandbox = AOS_TRY(bool_of(n));
       return {};
     }},
    {"no_sandbox",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       if (s.sandbox) return issue(n.source(), "give either sandbox or no_sandbox, not both");
       s.sandbox = !AOS_TRY(bool_of(n));
       return {};
     }},
    {"cgroup_parent",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.cgroup_parent = AOS_TRY(non_empty_string_of(n));
       return {};
     }},
    {"sdk_dir",
     [](const toml::node& n, const Ctx& c, KernelSettings& s) -> Checked<void> {
       s.sdk_dir = AOS_TRY(path_of(n, c));
       return {};
     }},
    {"kill_grace_ms",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.kill_grace_ms = static_cast<int>(AOS_TRY(int_of(n, 0, kKillGraceMsMax)));
       return {};
     }},
    {"llm_provider",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.llm_provider = AOS_TRY(choice_of(n, {"gemini", "openai"}));
       return {};
     }},
    {"llm_model",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.llm_model = AOS_TRY(non_empty_string_of(n));
       return {};
     }},
    {"llm_base_url",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       auto url = AOS_TRY(non_empty_string_of(n));
       if (!url.starts_with("http://") && !url.starts_with("https://")) {
         return issue(n.source(), "must start with http:// or https://");
       }
       s.llm_base_url = std::move(url);
       return {};
     }},
    {"llm_max_inflight",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.llm_max_inflight = static_cast<unsigned>(AOS_TRY(int_of(n, 1, kLlmInflightMax)));
       return {};
     }},
    {"llm_rpm",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.llm_rpm = AOS_TRY(number_of(n, 0, 1e15));
       return {};
     }},
    {"llm_tpm",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.llm_tpm = AOS_TRY(number_of(n, 0, 1e15));
       return {};
     }},
    {"llm_timeout",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.llm_timeout = AOS_TRY(number_of(n, 0.001, 86400));
       return {};
     }},
    {"llm_scheduler",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.llm_scheduler = AOS_TRY(choice_of(n, {"fair", "fifo"}));
       return {};
     }},
    {"stats_interval_ms",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.stats_interval_ms =
           static_cast<uint32_t>(AOS_TRY(int_of(n, kStatsIntervalMsMin, kStatsIntervalMsMax)));
       return {};
     }},
    {"log_max_bytes",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.log_max_bytes = AOS_TRY(bytes_of(n, kLogMaxBytesMin, kLogMaxBytesMax));
       return {};
     }},
    {"log_max_files",
     [](const toml::node& n, const Ctx&, KernelSettings& s) -> Checked<void> {
       s.log_max_files = static_cast<uint32_t>(AOS_TRY(int_of(n, 1, kLogMaxFilesMax)));
       return {};
     }},
};

std::string known_kernel_keys() {
  std::vector<std::string_view> names;
  for (const auto& k : kKernelKeys) names.push_back(k.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

Checked<KernelSettings> parse_kernel(const toml::table& t, const Ctx& ctx) {
  KernelSettings s;
  for (const auto& [key, node] : in_file_order(t)) {
    const auto* row = std::find_if(std::begin(kKernelKeys), std::end(kKernelKeys),
                                   [&](const KernelKey& k) { return k.name == key->str(); });
    if (row == std::end(kKernelKeys)) {
      return issue(key->source(), fmt::format("[kernel]: unknown key '{}' (known: {})", key->str(),
                                              known_kernel_keys()));
    }
    if (auto r = row->set(*node, ctx, s); !r) {
      // The key, not the value: every error about a setting points at its name.
      return issue(key->source(), fmt::format("[kernel] {}: {}", key->str(), r.error().what));
    }
  }
  return s;
}

// ---- [[agent]] -------------------------------------------------------------

// TOML to JSON as the wire would carry it: non-negative integers become
// unsigned, as nlohmann::json::parse makes them, because SPAWN's parser
// tells counts by is_number_unsigned().
Checked<json> to_json(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return json(n.as_string()->get());
    case toml::node_type::boolean:
      return json(n.as_boolean()->get());
    case toml::node_type::integer: {
      const int64_t v = n.as_integer()->get();
      return v >= 0 ? json(static_cast<uint64_t>(v)) : json(v);
    }
    case toml::node_type::floating_point: {
      const double d = n.as_floating_point()->get();
      if (!std::isfinite(d)) return issue(n.source(), "inf and nan are not allowed");
      return json(d);
    }
    case toml::node_type::array: {
      json out = json::array();
      for (const auto& element : *n.as_array()) out.push_back(AOS_TRY(to_json(element)));
      return out;
    }
    case toml::node_type::table: {
      json out = json::object();
      for (const auto& [k, v] : in_file_order(*n.as_table()))
        out[std::string(k->str())] = AOS_TRY(to_json(*v));
      return out;
    }
    default:
      return issue(n.source(), "dates and times are not allowed here");
  }
}

// limits.cpu = "50%": half of one CPU, as a quota per period (like docker --cpus=0.5).
Checked<uint64_t> cpu_quota_of(const toml::node& n, const toml::source_region& where,
                               uint64_t period_us) {
  constexpr std::string_view kHint =
      "expected a percentage of one CPU such as \"50%\" (or give limits.cpu_quota in µs)";
  const auto* s = n.as_string();
  if (!s || !s->get().ends_with('%'))
    return issue(where, fmt::format("invalid field 'limits.cpu': {}", kHint));
  const std::string_view text(s->get().data(), s->get().size() - 1);
  double percent = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), percent);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(percent) ||
      percent <= 0 || percent > 100'000) {
    return issue(where, fmt::format("invalid field 'limits.cpu': {}", kHint));
  }
  const auto quota =
      static_cast<uint64_t>(std::llround(percent / 100.0 * static_cast<double>(period_us)));
  if (quota < 1000) {
    return issue(where,
                 fmt::format("invalid field 'limits.cpu': {} of a {} µs period is {} µs, below the "
                             "kernel's minimum quota of 1000 µs",
                             s->get(), period_us, quota));
  }
  return quota;
}

Checked<json> limits_to_json(const toml::node& n) {
  const auto* t = n.as_table();
  if (!t) return to_json(n);  // SPAWN's parser names the wrong type
  const auto* period = t->get("cpu_period");
  const uint64_t period_us = period && period->as_integer() && period->as_integer()->get() > 0
                                 ? static_cast<uint64_t>(period->as_integer()->get())
                                 : kDefaultCpuPeriodUs;
  json out = json::object();
  for (const auto& [key, node] : in_file_order(*t)) {
    if (key->str() == "memory" && node->is_string()) {
      auto bytes = parse_byte_size(node->as_string()->get());
      if (!bytes)
        return issue(key->source(), "invalid field 'limits.memory': " + bytes.error().message());
      out["memory"] = *bytes;
    } else if (key->str() == "cpu") {
      if (t->contains("cpu_quota")) {
        return issue(key->source(),
                     "invalid field 'limits.cpu': give either cpu or cpu_quota, not both");
      }
      out["cpu_quota"] = AOS_TRY(cpu_quota_of(*node, key->source(), period_us));
    } else {
      out[std::string(key->str())] = AOS_TRY(to_json(*node));
    }
  }
  return out;
}

// Where a field is written: its key ("memroy = 5" points at memroy), or for
// an array element (args[2]) the element itself.
const toml::source_region* field_position(const toml::table& agent, std::string_view path) {
  if (path.ends_with(']')) {
    const auto* node = agent.at_path(path).node();
    return node ? &node->source() : nullptr;
  }
  const size_t dot = path.find_last_of('.');
  const toml::table* parent =
      dot == std::string_view::npos ? &agent : agent.at_path(path.substr(0, dot)).as_table();
  if (parent == nullptr) return nullptr;
  const auto it = parent->find(dot == std::string_view::npos ? path : path.substr(dot + 1));
  return it == parent->end() ? nullptr : &it->first.source();
}

// parse_spawn_request() names the field at fault as "invalid field '<path>'",
// in the path syntax toml::at_path() reads (limits.memory, args[2], env.K).
// The nearest field on that path gives the line; else the [[agent]] header.
toml::source_region locate_field(const toml::table& agent, const std::string& message) {
  constexpr std::string_view kPrefix = "invalid field '";
  if (message.starts_with(kPrefix)) {
    const size_t close = message.find('\'', kPrefix.size());
    std::string path = message.substr(kPrefix.size(), close - kPrefix.size());
    while (!path.empty()) {
      if (const auto* where = field_position(agent, path)) return *where;
      const size_t cut = path.find_last_of(".[");
      path.resize(cut == std::string::npos ? 0 : cut);
    }
  }
  return agent.source();
}

void resolve_relative_paths(json& spec, const Ctx& ctx) {
  if (auto it = spec.find("script"); it != spec.end() && it->is_string()) {
    *it = absolute_from(ctx, it->get<std::string>());
  }
  // A bare interpreter name ("python3") is looked up on PATH; a path such
  // as "venv/bin/python" is relative to the file like the script.
  if (auto it = spec.find("python"); it != spec.end() && it->is_string()) {
    const auto python = it->get<std::string>();
    if (python.find('/') != std::string::npos) *it = absolute_from(ctx, python);
  }
}

Checked<void> check_script_file(const toml::table& agent, const std::string& script) {
  std::error_code ec;
  const auto status = fs::status(script, ec);
  if (status.type() == fs::file_type::regular) return {};
  const auto* node = agent.get("script");
  const auto why = status.type() == fs::file_type::not_found ? std::string("no such file")
                   : ec                                      ? ec.message()
                                                             : std::string("not a regular file");
  return issue(node ? node->source() : agent.source(),
               fmt::format("invalid field 'script': {}: {}", script, why));
}

Checked<json> agent_to_json(const toml::table& agent, const Ctx& ctx) {
  json spec = json::object();
  for (const auto& [key, node] : in_file_order(agent)) {
    const std::string name(key->str());
    if (name == "limits") {
      spec[name] = AOS_TRY(limits_to_json(*node));
    } else {
      spec[name] = AOS_TRY(to_json(*node));
    }
  }
  resolve_relative_paths(spec, ctx);
  if (auto parsed = runtime::parse_spawn_request(spec); !parsed) {
    return issue(locate_field(agent, parsed.error().message()), parsed.error().message());
  }
  if (ctx.check_files) AOS_TRY_VOID(check_script_file(agent, spec["script"].get<std::string>()));
  return spec;
}

std::string agent_label(const toml::table& agent, size_t index) {
  const auto* name = agent.get_as<std::string>("name");
  return name ? fmt::format("[[agent]] #{} '{}'", index + 1, name->get())
              : fmt::format("[[agent]] #{}", index + 1);
}

Checked<std::vector<json>> parse_agents(const toml::array& agents, const Ctx& ctx) {
  std::vector<json> out;
  std::map<std::string, toml::source_index> first_line;  // name -> line of its [[agent]]
  for (size_t i = 0; i < agents.size(); ++i) {
    const toml::table& agent = *agents[i].as_table();
    auto spec = agent_to_json(agent, ctx);
    if (!spec) return issue(spec.error().where, agent_label(agent, i) + ": " + spec.error().what);
    const auto name = (*spec)["name"].get<std::string>();
    if (auto [it, fresh] = first_line.emplace(name, agent.source().begin.line); !fresh) {
      return issue(agent.find("name")->first.source(),
                   fmt::format("{}: duplicate name (also declared at line {})",
                               agent_label(agent, i), it->second));
    }
    out.push_back(std::move(*spec));
  }
  return out;
}

// ---- the document ----------------------------------------------------------

Checked<ConfigFile> parse_document(const toml::table& doc, const Ctx& ctx) {
  ConfigFile out;
  for (const auto& [key, node] : in_file_order(doc)) {
    if (key->str() == "kernel") {
      const auto* t = node->as_table();
      if (!t) return issue(key->source(), "'kernel' must be a table: [kernel]");
      out.kernel = AOS_TRY(parse_kernel(*t, ctx));
    } else if (key->str() == "agent") {
      const auto* a = node->as_array();
      if (!a || !(a->empty() || a->is_array_of_tables())) {
        return issue(key->source(), "declare agents as an array of tables: [[agent]]");
      }
      out.agents = AOS_TRY(parse_agents(*a, ctx));
    } else {
      return issue(
          key->source(),
          fmt::format("unknown top-level key '{}' (known: [kernel], [[agent]])", key->str()));
    }
  }
  return out;
}

// toml++ as Debian builds it (libtomlplusplus3) has exceptions on: parse
// errors arrive as toml::parse_error, caught here and nowhere else.
Result<toml::table> parse_toml(std::string_view text, const Ctx& ctx) {
  try {
    return toml::parse(text, ctx.source);
  } catch (const toml::parse_error& e) {
    return to_error(ctx, Issue{e.source(), std::string(e.description())});
  }
}

Result<ConfigFile> parse_with(std::string_view text, const Ctx& ctx) {
  const toml::table doc = AOS_TRY(parse_toml(text, ctx));
  auto file = parse_document(doc, ctx);
  if (!file) return to_error(ctx, file.error());
  return std::move(*file);
}

fs::path directory_of(std::string_view source_name) {
  std::error_code ec;
  const fs::path abs = fs::absolute(fs::path(source_name), ec);
  return (ec ? fs::path(source_name) : abs).lexically_normal().parent_path();
}

Result<std::string> read_config(const std::string& path) {
  // O_NONBLOCK: a FIFO named as the config must not hang the start-up.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return sys_error(path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return sys_error(path);
  if (!S_ISREG(st.st_mode)) return make_error(path + ": not a regular file");
  // The file decides what runs, and may turn the sandbox off: one that
  // others can write is a way in for them (sshd's StrictModes, for the same reason).
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return make_error(
        fmt::format("{}: writable by group or others (mode {:04o}); run chmod go-w {}", path,
                    st.st_mode & 07777, path));
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigBytes)
    return make_error(path + ": larger than 1 MiB");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error(path);
    if (n == 0) break;  // shrank since fstat
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return text;
}

}  // namespace

Result<uint64_t> parse_byte_size(std::string_view text) {
  auto bad = [&] {
    return make_error(
        fmt::format("'{}' is not a size (examples: 1048576, 512k, 256M, 1.5G)", text));
  };
  size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  const std::string_view number = text.substr(0, digits);
  std::string unit(text.substr(digits));
  if (unit.starts_with(' ')) unit.erase(0, 1);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (unit.ends_with('b')) unit.pop_back();
  if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();
  static constexpr std::string_view kUnits = "kmgtp";
  const size_t at = unit.size() == 1 ? kUnits.find(unit[0]) : std::string_view::npos;
  if (number.empty() || (!unit.empty() && at == std::string_view::npos)) return bad();
  const double scale = unit.empty() ? 1.0 : std::ldexp(1.0, 10 * static_cast<int>(at + 1));
  if (number.find('.') == std::string_view::npos) {
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), n);
    if (ec != std::errc{} || end != number.data() + number.size()) return bad();
    if (static_cast<double>(n) * scale >= 0x1p64)
      return make_error(fmt::format("'{}' is too large", text));
    return n * static_cast<uint64_t>(scale);
  }
  double d = 0;
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), d);
  if (ec != std::errc{} || end != number.data() + number.size()) return bad();
  if (d * scale >= 0x1p64) return make_error(fmt::format("'{}' is too large", text));
  return static_cast<uint64_t>(d * scale);  // fractions of a byte are dropped, as docker does
}

Result<ConfigFile> parse_config_text(std::string_view text, std::string_view source_name) {
  return parse_with(text, Ctx{std::string(source_name), directory_of(source_name), false});
}

Result<ConfigFile> load_config_file(const std::string& path) {
  const std::string text = AOS_TRY(read_config(path));
  auto file = parse_with(text, Ctx{path, directory_of(path), true});
  if (!file) return file;
  std::error_code ec;
  const fs::path abs = fs::absolute(path, ec);
  file->path = (ec ? fs::path(path) : abs).lexically_normal().string();
  return file;
}

namespace {

// name -> index in `specs`; an entry without a string name or a repeated
// name is an error.
Result<std::map<std::string, size_t>> index_by_name(const std::vector<json>& specs,
                                                    std::string_view which) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < specs.size(); ++i) {
    const auto it = specs[i].find("name");
    if (!specs[i].is_object() || it == specs[i].end() || !it->is_string()) {
      return make_error(fmt::format("{} agent #{} has no name", which, i + 1));
    }
    if (!index.emplace(it->get<std::string>(), i).second) {
      return make_error(fmt::format("{} agents name '{}' twice", which, it->get<std::string>()));
    }
  }
  return index;
}

}  // namespace

Result<ReloadPlan> plan_reload(const std::vector<json>& running_declared,
                               const std::vector<json>& wanted) {
  const auto running = AOS_TRY(index_by_name(running_declared, "running"));
  AOS_TRY_VOID(index_by_name(wanted, "wanted"));
  ReloadPlan plan;
  std::set<std::string> still_wanted;
  for (const auto& spec : wanted) {
    const auto name = spec["name"].get<std::string>();
    still_wanted.insert(name);
    const auto it = running.find(name);
    if (it == running.end()) {
      plan.start.push_back(spec);
    } else if (running_declared[it->second] != spec) {
      plan.restart.push_back(spec);
    } else {
      plan.keep.push_back(name);
    }
  }
  for (auto it = running_declared.rbegin(); it != running_declared.rend(); ++it) {
    const auto name = (*it)["name"].get<std::string>();
    if (!still_wanted.contains(name)) plan.stop.push_back(name);
  }
  return plan;
}

}  // namespace agentos
