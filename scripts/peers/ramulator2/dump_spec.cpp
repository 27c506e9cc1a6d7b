// Our helper (not Ramulator code): builds a Ramulator 2.0 memory system from a
// YAML config exactly as `ramulator2 -f` would, then prints, as JSON, the DRAM
// device spec Ramulator actually simulates with: organisation, the timing
// values after every preset, density/rate table and config override has been
// applied, and the resolved timing-constraint table the DRAM model checks.
// This is what reports/golden/ramulator2/timings.json is made from, so our own
// presets can be matched value for value without reading Ramulator's C++.
//
// Built by build.sh, linked against the same objects as bin/ramulator2.
// Usage: ramulator2-dump-spec CONFIG.yaml   (prints one JSON object)
#include <iostream>
#include <sstream>
#include <string>

#include "base/base.h"
#include "base/config.h"
#include "dram/dram.h"
#include "memory_system/memory_system.h"

using namespace Ramulator;

static std::string q(std::string_view s) { return "\"" + std::string(s) + "\""; }

int main(int argc, char* argv[]) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " CONFIG.yaml\n";
    return 2;
  }
  YAML::Node config = Config::parse_config_file(argv[1], {});
  IMemorySystem* ms = Factory::create_memory_system(config);
  IDRAM* d = ms->get_ifce<IDRAM>();
  auto* impl = dynamic_cast<Implementation*>(d);

  std::ostringstream o;
  o << "{\n";
  o << "  \"impl\": " << q(impl->get_name()) << ",\n";
  o << "  \"memory_clock_tCK_ps\": " << d->m_timing_vals("tCK_ps") << ",\n";
  o << "  \"levels\": [";
  for (size_t i = 0; i < d->m_levels.size(); i++) o << (i ? ", " : "") << q(d->m_levels((int)i));
  o << "],\n";
  o << "  \"organization\": {\"density_Mb\": " << d->m_organization.density
    << ", \"dq\": " << d->m_organization.dq << ", \"count\": {";
  for (size_t i = 0; i < d->m_levels.size(); i++)
    o << (i ? ", " : "") << q(d->m_levels((int)i)) << ": " << d->m_organization.count[i];
  o << "}},\n";
  o << "  \"channel_width\": " << d->m_channel_width << ",\n";
  o << "  \"internal_prefetch_size\": " << d->m_internal_prefetch_size << ",\n";
  o << "  \"read_latency\": " << d->m_read_latency << ",\n";
  o << "  \"timings\": {";
  for (size_t i = 0; i < d->m_timings.size(); i++)
    o << (i ? ", " : "") << q(d->m_timings((int)i)) << ": " << d->m_timing_vals((int)i);
  o << "},\n";
  o << "  \"commands\": {";
  for (size_t c = 0; c < d->m_commands.size(); c++) {
    const auto& m = d->m_command_meta((int)c);
    o << (c ? ",\n    " : "\n    ") << q(d->m_commands((int)c)) << ": {\"scope\": "
      << q(d->m_levels(d->m_command_scopes((int)c))) << ", \"opening\": " << (m.is_opening ? "true" : "false")
      << ", \"closing\": " << (m.is_closing ? "true" : "false")
      << ", \"accessing\": " << (m.is_accessing ? "true" : "false")
      << ", \"refreshing\": " << (m.is_refreshing ? "true" : "false") << "}";
  }
  o << "\n  },\n";
  o << "  \"requests\": {";
  for (size_t r = 0; r < d->m_requests.size(); r++)
    o << (r ? ", " : "") << q(d->m_requests((int)r)) << ": " << q(d->m_commands(d->m_request_translations((int)r)));
  o << "},\n";
  // m_timing_cons[level][preceding] = [{following, latency, window, sibling}],
  // in the order Ramulator's populate_timingcons stored them (duplicates kept:
  // the device checks every entry, so the binding one is the largest).
  o << "  \"timing_constraints\": [";
  bool first = true;
  for (size_t l = 0; l < d->m_timing_cons.size(); l++) {
    for (size_t p = 0; p < d->m_timing_cons[l].size(); p++) {
      for (const auto& e : d->m_timing_cons[l][p]) {
        o << (first ? "\n    " : ",\n    ") << "{\"level\": " << q(d->m_levels((int)l))
          << ", \"preceding\": " << q(d->m_commands((int)p)) << ", \"following\": " << q(d->m_commands(e.cmd))
          << ", \"latency\": " << e.val << ", \"window\": " << e.window
          << ", \"sibling\": " << (e.sibling ? "true" : "false") << "}";
        first = false;
      }
    }
  }
  o << "\n  ]\n}\n";
  std::cout << o.str();
  return 0;
}
