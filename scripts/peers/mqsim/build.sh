#!/usr/bin/env bash
# Build the peer SSD simulator MQSim (CMU-SAFARI/MQSim) outside this repo, so
# that reports/golden/mqsim/ can be regenerated. Nothing of MQSim is committed
# here; its source is exported from a git mirror (or cloned) at a pinned commit.
#
# Env:
#   MQSIM_DIR      build directory            (default /work/peers/mqsim)
#   MQSIM_GIT_DIR  bare git dir of MQSim      (default /work/.mirror/CMU-SAFARI+MQSim/repo;
#                  if absent, https://github.com/CMU-SAFARI/MQSim is cloned)
#   MQSIM_COMMIT   commit to build            (default 7ec40e3b..., master as of 2022-10-05)
#   JOBS           make -j                    (default 2)
#   CXXFLAGS_OPT   optimisation flags         (default -O2)
# Needs g++ (tested with 12.2) and make; no cmake.
set -euo pipefail
MQSIM_DIR=${MQSIM_DIR:-/work/peers/mqsim}
MQSIM_GIT_DIR=${MQSIM_GIT_DIR:-/work/.mirror/CMU-SAFARI+MQSim/repo}
MQSIM_COMMIT=${MQSIM_COMMIT:-7ec40e3b198e8bd117f992f051cd610e330e079e}
JOBS=${JOBS:-2}
CXXFLAGS_OPT=${CXXFLAGS_OPT:--O2}

if [ ! -f "$MQSIM_DIR/.exported-$MQSIM_COMMIT" ]; then
  cd /; rm -rf "$MQSIM_DIR"; mkdir -p "$MQSIM_DIR"
  if [ ! -d "$MQSIM_GIT_DIR" ]; then
    MQSIM_GIT_DIR="$MQSIM_DIR.git"
    [ -d "$MQSIM_GIT_DIR" ] || git clone --bare https://github.com/CMU-SAFARI/MQSim "$MQSIM_GIT_DIR"
  fi
  git --git-dir="$MQSIM_GIT_DIR" archive "$MQSIM_COMMIT" | tar -x -C "$MQSIM_DIR"
  touch "$MQSIM_DIR/.exported-$MQSIM_COMMIT"
fi
cd "$MQSIM_DIR"

# Patches, applied to the build copy only (idempotent):
# 1. the shipped Makefile uses -O3 -g; use $CXXFLAGS_OPT without -g (smaller, faster build).
sed -i -E "s/^CC_FLAGS[[:space:]]*:=.*/CC_FLAGS := -std=c++11 $CXXFLAGS_OPT -w/" Makefile

# 2. Reporting fix + extra precision, src/host/IO_Flow_Base.{h,cpp} only. The
#    simulated device/flash behaviour is NOT changed.
#    a) IOPS and Bandwidth divide by (Simulator->Time() / 1000000000) in integer
#       arithmetic, i.e. by the simulated time truncated to whole seconds (inf
#       below 1 s, up to 2x too high below 2 s). Known upstream bug, reported in
#       CMU-SAFARI/MQSim issue #13 (comment by Mappouras, 2019-03-01) and never
#       fixed on master. Fix: divide in double.
#    b) The stock XML gives mean latencies only as integer microseconds. Append
#       extra elements to each Host.IO_Flow result (after the stock ones):
#       Simulated_Time_ns, Last_Completion_Time_ns, Serviced_Request_Count,
#       Device_Response_Time_ns, End_to_End_Request_Delay_ns (means, double),
#       Min/Max_Device_Response_Time_ns, Min/Max_End_to_End_Request_Delay_ns.
f=src/host/IO_Flow_Base.cpp; h=src/host/IO_Flow_Base.h
if ! grep -q CASCADE_PATCH "$f"; then
  sed -i 's|(Simulator->Time() / SIM_TIME_TO_SECONDS_COEFF)|((double)Simulator->Time() / SIM_TIME_TO_SECONDS_COEFF)|g' "$f"
  sed -i 's|^\(\s*\)STAT_serviced_request_count++;|\1STAT_serviced_request_count++; STAT_last_completion_time = Simulator->Time(); /* CASCADE_PATCH */|' "$f"
  sed -i 's|^\(\s*\)sim_time_type STAT_transferred_bytes_total, STAT_transferred_bytes_read, STAT_transferred_bytes_write;|&\n\1sim_time_type STAT_last_completion_time = 0; /* CASCADE_PATCH */|' "$h"
  cat > /tmp/mqsim_cascade_patch.$$ <<'CPP'
		/* CASCADE_PATCH: extra, higher-precision result fields */
		{
			const double n = STAT_serviced_request_count ? (double)STAT_serviced_request_count : 1.0;
			const char* names[] = {"Simulated_Time_ns", "Last_Completion_Time_ns", "Serviced_Request_Count",
				"Device_Response_Time_ns", "Min_Device_Response_Time_ns", "Max_Device_Response_Time_ns",
				"End_to_End_Request_Delay_ns", "Min_End_to_End_Request_Delay_ns", "Max_End_to_End_Request_Delay_ns"};
			std::string vals[] = {std::to_string(Simulator->Time()), std::to_string(STAT_last_completion_time), std::to_string(STAT_serviced_request_count),
				std::to_string((double)STAT_sum_device_response_time / n), std::to_string(STAT_min_device_response_time), std::to_string(STAT_max_device_response_time),
				std::to_string((double)STAT_sum_request_delay / n), std::to_string(STAT_min_request_delay), std::to_string(STAT_max_request_delay)};
			for (int i = 0; i < 9; i++) {
				std::string a = names[i];
				xmlwriter.Write_attribute_string(a, vals[i]);
			}
		}
CPP
  sed -i "/std::to_string(Get_max_end_to_end_request_delay())/{n;r /tmp/mqsim_cascade_patch.$$
}" "$f"
  rm -f /tmp/mqsim_cascade_patch.$$
  grep -c CASCADE_PATCH "$f" "$h"
  rm -rf build MQSim   # the Makefile has no header dependencies: rebuild everything
fi

make -j"$JOBS" all
./MQSim 2>&1 | head -3 || true
echo "built $MQSIM_DIR/MQSim from CMU-SAFARI/MQSim@$MQSIM_COMMIT"
