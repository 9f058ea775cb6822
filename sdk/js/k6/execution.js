// `k6/execution`: which VU and iteration is running.
import { iteration, vuId } from "../lib/host.js";

const execution = {
  vu: {
    get idInTest() {
      return vuId();
    },
    get iterationInInstance() {
      return iteration();
    },
    get iterationInScenario() {
      return iteration();
    },
  },
};

export default execution;
export const vu = execution.vu;
